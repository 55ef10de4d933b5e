"""Registration and login (ADR 0021): identity is state the gateway writes, not events.

Registration claims the email through the unique index of `wallet.users`, then publishes the
command that opens the wallet and waits for it. Login checks the PIN (argon2id, off the event
loop) after counting the attempt, and answers a JWT.
"""

from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import orjson
from fastapi import APIRouter, Depends, Form
from starlette.responses import Response

from services.wallet.adapters.identity_store import NewUser, User
from services.wallet.domain.identity import EMAIL_MAX_CHARACTERS, email_key, is_email
from services.wallet.entrypoints.http.dependencies import WalletDependencies, WalletHttp
from services.wallet.entrypoints.http.schemas import (
    RegisterRequest,
    RegisterResponse,
    TokenResponse,
)
from shared.contracts.base import forbidden_character, utc_now
from shared.contracts.envelope import build_envelope
from shared.contracts.wallet import OPEN_WALLET_V1, OpenWallet
from shared.crypto.sealing import new_key, seal
from shared.http.commands import GATEWAY_SOURCE
from shared.http.errors import DomainHTTPError, json_response
from shared.http.schemas import error

OPEN_WALLET_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledgerbus.dev/wallet/open")
PASSWORD_FORM_MAX_CHARACTERS = 128
"""A PIN is five digits; longer input is refused unread rather than hashed."""
FORM_FIELD_MAX_CHARACTERS = 512

router = APIRouter(tags=["users"])


@router.post(
    "/auth/register",
    status_code=201,
    summary="Register a user; their wallet opens with 500000 paisa from the system account",
    response_model=RegisterResponse,
    responses={409: error("email_taken."), 413: error("body_too_large.")},
)
async def register(body: RegisterRequest, wallet: WalletDependencies) -> Response:
    key = email_key(body.email)
    if await wallet.identity.by_email(key) is not None:
        raise _email_taken()
    pin_hash = await wallet.pins.hash(body.pin)
    user_id, secret = uuid4(), new_key()
    owner = str(user_id)
    user = User(
        user_id=user_id, email=body.email, name_sealed=seal(secret, owner, body.name),
        email_sealed=seal(secret, owner, body.email), pin_hash=pin_hash, created_at=utc_now(),
        open_command_id=str(uuid5(OPEN_WALLET_NAMESPACE, owner)),
    )  # fmt: skip
    if not await wallet.identity.create(NewUser(user, key, secret)):
        raise _email_taken()  # a concurrent registration won the unique index
    opened, position = await _open_wallet(wallet, user)
    answer = {
        "id": owner, "name": body.name, "email": body.email, "created_at": user.created_at,
        "wallet": "open" if opened else "opening", "position": position,
    }  # fmt: skip
    return json_response(answer, 201)


def _email_taken() -> DomainHTTPError:
    return DomainHTTPError(409, "email_taken", "A user with this email is already registered.")


async def _open_wallet(wallet: WalletHttp, user: User) -> tuple[bool, str | None]:
    """Publish OpenWallet and wait; a broker or timeout failure leaves it to the repair loop."""
    envelope = build_envelope(
        message_type=OPEN_WALLET_V1, source=GATEWAY_SOURCE, subject=str(user.user_id),
        data=OpenWallet(
            user_id=user.user_id, name_sealed=user.name_sealed, email_sealed=user.email_sealed
        ),
        message_id=user.open_command_id,
    )  # fmt: skip
    try:
        reply = await wallet.sender.request(str(user.user_id), envelope)
    except DomainHTTPError:
        return False, None  # the user exists; the wallet processor's repair opens the wallet
    if reply is None or reply.status != 201:
        return False, None
    body: dict[str, Any] = orjson.loads(reply.body)
    position = body.get("position")
    return True, position if isinstance(position, str) else None


class LoginForm:
    """The OAuth2 password form (username = email, password = PIN), every field bounded."""

    def __init__(  # noqa: PLR0917 (FastAPI reads form fields by name)
        self,
        username: Annotated[str, Form(min_length=1, max_length=EMAIL_MAX_CHARACTERS)],
        password: Annotated[str, Form(min_length=1, max_length=PASSWORD_FORM_MAX_CHARACTERS)],
        grant_type: Annotated[str, Form(pattern="^password$")] = "password",
        scope: Annotated[str, Form(max_length=FORM_FIELD_MAX_CHARACTERS)] = "",
        client_id: Annotated[str, Form(max_length=FORM_FIELD_MAX_CHARACTERS)] = "",
        client_secret: Annotated[str, Form(max_length=FORM_FIELD_MAX_CHARACTERS)] = "",
    ) -> None:
        self.username = username
        self.password = password


TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error("invalid_credentials: the email or the PIN is wrong."),
    429: error("too_many_attempts: the account is locked for a while; see Retry-After."),
}


@router.post(
    "/auth/token",
    summary="Log in with the OAuth2 password form: username = email, password = PIN",
    response_model=TokenResponse,
    responses=TOKEN_RESPONSES,
)
async def token(form: Annotated[LoginForm, Depends()], wallet: WalletDependencies) -> Response:
    user_id = await _check_credentials(wallet, form.username, form.password)
    issued = wallet.tokens.issue(user_id)
    return json_response(
        {"access_token": issued.access_token, "token_type": "bearer",
         "expires_in": issued.expires_in}
    )  # fmt: skip


router.add_api_route(
    "/login", token, methods=["POST"], summary="Log in (the seed's route; same as /auth/token)",
    response_model=TokenResponse, responses=TOKEN_RESPONSES,
)  # fmt: skip


async def _check_credentials(wallet: WalletHttp, email: str, pin: str) -> UUID:
    # A NUL or another forbidden character is in no registered email, and PostgreSQL would
    # refuse it as text: such an email is unknown without asking (found by review).
    known_shape = is_email(email) and forbidden_character(email) is None
    user = await wallet.identity.by_email(email_key(email)) if known_shape else None
    if user is None:
        await wallet.pins.verify(None, pin)  # an unknown account costs what a known one does
        raise _invalid_credentials()
    now = utc_now()
    locked = await wallet.identity.begin_login(user.user_id, now)
    if locked is not None:
        raise _too_many(locked.until.timestamp() - now.timestamp())
    if not await wallet.pins.verify(user.pin_hash, pin):
        await wallet.identity.failed_login(user.user_id, utc_now())
        raise _invalid_credentials()
    await wallet.identity.succeeded_login(user.user_id)
    return user.user_id


def _invalid_credentials() -> DomainHTTPError:
    return DomainHTTPError(
        401, "invalid_credentials", "The email or the PIN is wrong.",
        headers={"WWW-Authenticate": "Bearer"},
    )  # fmt: skip


def _too_many(seconds: float) -> DomainHTTPError:
    wait = max(1, int(seconds + 0.999))
    return DomainHTTPError(
        429, "too_many_attempts",
        f"Too many login attempts for this account; try again in {wait} s.",
        headers={"Retry-After": str(wait)},
    )  # fmt: skip
