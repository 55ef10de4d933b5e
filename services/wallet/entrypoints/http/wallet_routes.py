"""The wallet's user routes: balance, transfers, the movement history, command answers.

A transfer becomes a `wallet.transfer_money.v1` command; the route waits for its final answer
(201 completed, 409 refused or refunded) or, past the command timeout, answers 202 pending
(ADR 0021). Reads come from the read models, with `min_position` for read-your-writes. Another
user's ids answer 404, as if they did not exist.
"""

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import orjson
from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from services.wallet.domain.identity import email_key
from services.wallet.domain.money import CURRENCY, taka
from services.wallet.entrypoints.http.dependencies import WalletDependencies, WalletHttp
from services.wallet.entrypoints.http.schemas import (
    IdempotencyKey,
    MeBalanceResponse,
    MovementsResponse,
    SeedTransferRequest,
    TransferRefusedResponse,
    TransferRequest,
    TransferResponse,
    WalletResponse,
)
from shared.contracts.base import Identifier, SourceText, utc_now
from shared.contracts.envelope import CloudEvent
from shared.contracts.wallet import TRANSFER_MONEY_V1, TransferMoney
from shared.crypto.sealing import SealError, unseal
from shared.engine.messages import ReplyKey
from shared.http.auth import CurrentUser, UserOrOperator
from shared.http.commands import GATEWAY_SOURCE, stored_reply_response
from shared.http.errors import DomainHTTPError, json_response
from shared.http.schemas import (
    CommandPendingResponse,
    MinPosition,
    PendingResponse,
    Since,
    Until,
    day_after,
    day_start,
    error,
)
from shared.kafka.producer import partition_for

TRANSFER_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledgerbus.dev/wallet/transfers")
MOVEMENTS_PAGE_DEFAULT = 50
MOVEMENTS_PAGE_MAX = 500
TRANSFER_PENDING_RETRY_AFTER_SECONDS = 2

router = APIRouter(tags=["wallet"])
USER_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error("missing_token or invalid_token."),
    404: error("Not found, or not this user's."),
    422: error("An invalid parameter or position (FastAPI's shape plus `code`)."),
    503: error("dependency_unavailable."),
    504: error("not_caught_up: the read model did not reach min_position within 5 s."),
}


def not_found(what: str) -> DomainHTTPError:
    return DomainHTTPError(404, f"{what}_not_found", f"No such {what} is visible to you.")


@router.get(
    "/wallet", summary="The caller's wallet", response_model=WalletResponse,
    responses=USER_ERRORS,
)  # fmt: skip
async def get_wallet(
    user: CurrentUser, wallet: WalletDependencies, min_position: MinPosition = None
) -> Response:
    row = await _balance(wallet, user, min_position)
    return json_response(
        {"user_id": str(user), "balance": row["balance"], "currency": CURRENCY,
         "position": row["position"]}
    )  # fmt: skip


async def _balance(wallet: WalletHttp, user: UUID, min_position: str | None) -> Any:
    await wallet.positions.wait_for(min_position)
    partition = partition_for(str(user).encode(), wallet.positions.partitions)
    row = await wallet.reads.balance(user, partition)
    if row["balance"] is None:
        raise not_found("wallet")
    return row


@router.get(
    "/users/me/balance", summary="The caller's balance in taka (the seed's route)",
    response_model=MeBalanceResponse, responses=USER_ERRORS,
)  # fmt: skip
async def me_balance(
    user: CurrentUser, wallet: WalletDependencies, min_position: MinPosition = None
) -> Response:
    row = await _balance(wallet, user, min_position)
    found = await wallet.identity.by_id(user)
    if found is None:
        raise not_found("user")
    # Taka with exactly two decimals, written as a JSON number without passing through a float.
    body = {"balance": orjson.Fragment(taka(row["balance"]).encode()), "user_email": found.email}
    return Response(orjson.dumps(body), media_type="application/json")


TRANSFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": TransferResponse, "description": "Still in flight past the command timeout:"
          " status pending; poll GET /wallet/transfers/{id}."},
    400: error("missing_idempotency_key."),
    401: error("missing_token or invalid_token."),
    404: error("recipient_not_found, or wallet_not_found for a sender without a wallet."),
    409: {"model": TransferRefusedResponse, "description": "insufficient_funds,"
          " idempotency_key_reused, transfer_refunded, transfer_in_progress."},
    422: error("self_transfer, or an invalid body or Idempotency-Key."),
    503: {"model": CommandPendingResponse, "description": "broker_unavailable or"
          " dependency_unavailable: ask GET /wallet/commands/{command_id} later."},
}  # fmt: skip


@router.post(
    "/wallet/transfers", status_code=201, summary="Transfer to another user",
    response_model=TransferResponse, responses=TRANSFER_RESPONSES,
)  # fmt: skip
async def create_transfer(
    body: TransferRequest, user: CurrentUser, wallet: WalletDependencies,
    idempotency_key: IdempotencyKey = None,
) -> Response:  # fmt: skip
    key = _required_key(idempotency_key)
    recipient = await _recipient(wallet, body.to_user_id, body.to_email)
    asked = TransferAsked(user, recipient, body.amount, body.note, key, _canonical(body))
    return await _transfer(wallet, asked)


@router.post(
    "/users/{user_id}/transfer", status_code=201,
    summary="Transfer (the seed's route): only for the caller's own id",
    response_model=TransferResponse, responses=TRANSFER_RESPONSES,
)  # fmt: skip
async def seed_transfer(
    user_id: Annotated[UUID, Path()], body: SeedTransferRequest, user: CurrentUser,
    wallet: WalletDependencies, idempotency_key: IdempotencyKey = None,
) -> Response:  # fmt: skip
    if user_id != user:
        raise not_found("user")
    key = idempotency_key if idempotency_key is not None else uuid4().hex
    recipient = await _recipient(wallet, body.to_user_id, None)
    asked = TransferAsked(user, recipient, body.amount, None, key, _canonical(body))
    return await _transfer(wallet, asked)


def _canonical(body: TransferRequest | SeedTransferRequest) -> bytes:
    return orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def _required_key(value: str | None) -> str:
    if value is None:
        raise DomainHTTPError(
            400, "missing_idempotency_key",
            "Send an Idempotency-Key header: a fresh value per transfer, the same on retries.",
        )  # fmt: skip
    return value


async def _recipient(wallet: WalletHttp, to_user_id: UUID | None, to_email: str | None) -> UUID:
    """The recipient as the identity table knows it (authoritative, not a read model)."""
    found = (
        await wallet.identity.by_id(to_user_id) if to_user_id is not None
        else await wallet.identity.by_email(email_key(to_email or ""))
    )  # fmt: skip
    if found is None:
        raise DomainHTTPError(404, "recipient_not_found", "There is no such recipient.")
    return found.user_id


@dataclass(frozen=True, slots=True)
class TransferAsked:
    """One transfer request as the caller sent it, its recipient resolved."""

    user: UUID
    recipient: UUID
    amount: int
    note: str | None
    key: str
    """The Idempotency-Key."""
    canonical: bytes
    """The body, canonically encoded: its hash tells a retry from a reuse of the key."""


async def _transfer(wallet: WalletHttp, asked: TransferAsked) -> Response:
    user, recipient, amount, note = asked.user, asked.recipient, asked.amount, asked.note
    key, canonical = asked.key, asked.canonical
    if recipient == user:
        raise DomainHTTPError(422, "self_transfer", "A wallet cannot transfer to itself.")
    transfer_id = uuid5(TRANSFER_NAMESPACE, f"{user}:{key}")
    request_hash = hashlib.sha256(canonical).hexdigest()
    command_id = str(uuid5(TRANSFER_NAMESPACE, f"{transfer_id}:{request_hash}"))
    stored = await wallet.replies.read(ReplyKey(GATEWAY_SOURCE, command_id))
    if stored is not None:  # a retry after the answer: the same answer, without a new record
        return Response(stored.body, status_code=stored.status, media_type="application/json")
    note_sealed = None
    if note is not None:
        note_sealed = await wallet.seal_for(user, note)
    now = utc_now()
    command = TransferMoney(
        transfer_id=transfer_id, from_user_id=user, to_user_id=recipient, amount=amount,
        note_sealed=note_sealed, request_hash=request_hash, requested_at=now,
    )  # fmt: skip
    envelope = CloudEvent(
        specversion="1.0", id=command_id, source=GATEWAY_SOURCE, type=TRANSFER_MONEY_V1,
        subject=str(user), time=now, data=command.model_dump(mode="json"),
    )  # fmt: skip
    reply = await wallet.sender.request(str(user), envelope)
    if reply is not None:
        return Response(reply.body, status_code=reply.status, media_type="application/json")
    pending = {
        "id": str(transfer_id), "status": "pending", "from_user_id": str(user),
        "to_user_id": str(recipient), "amount": amount, "created_at": now,
        "command_id": command_id,
    }  # fmt: skip
    # The request's own answer lives under its command id: the transfer id may name an earlier
    # transfer when this request reused its key with another body (then 409) (found by review).
    headers = {
        "Retry-After": str(TRANSFER_PENDING_RETRY_AFTER_SECONDS),
        "Location": f"/wallet/commands/{command_id}",
    }
    return json_response(pending, 202, headers)


@router.get(
    "/wallet/transfers/{transfer_id}", summary="A transfer the caller sent or received",
    responses=USER_ERRORS,
)  # fmt: skip
async def get_transfer(
    transfer_id: Annotated[UUID, Path()], user: CurrentUser, wallet: WalletDependencies,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    await wallet.positions.wait_for(min_position)
    row = await wallet.reads.transfer(transfer_id)
    if row is None or user not in (row["from_user_id"], row["to_user_id"]):
        raise not_found("transfer")
    note = None
    if row["note_sealed"] is not None:
        keys = await wallet.identity.keys([row["from_user_id"]])
        note = _opened(keys.get(row["from_user_id"]), row["from_user_id"], row["note_sealed"])
    body = {
        "id": str(row["transfer_id"]), "status": row["status"],
        "from_user_id": str(row["from_user_id"]), "to_user_id": str(row["to_user_id"]),
        "amount": row["amount"], "created_at": row["created_at"],
        "updated_at": row["updated_at"], "code": row["code"], "note": note,
        "credited_at": row["credited_at"], "position": row["position"],
    }  # fmt: skip
    return json_response(body)


def _opened(key: bytes | None, owner: UUID, sealed: str) -> str | None:
    """Personal data for the answer; None once the owner's key was erased (shredded)."""
    if key is None:
        return None
    try:
        return unseal(key, str(owner), sealed)
    except SealError:
        return None


Limit = Annotated[int, Query(ge=1, le=MOVEMENTS_PAGE_MAX)]
Before = Annotated[UUID | None, Query(description="A movement id: return older movements.")]


@router.get(
    "/wallet/transactions", summary="The caller's money movements, newest first",
    response_model=MovementsResponse, responses=USER_ERRORS,
)  # fmt: skip
async def movements(  # noqa: PLR0917 (FastAPI reads parameters by name)
    user: CurrentUser, wallet: WalletDependencies, limit: Limit = MOVEMENTS_PAGE_DEFAULT,
    before: Before = None, since: Since = None, until: Until = None,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    await wallet.positions.wait_for(min_position)
    items, next_before = await _movements(
        wallet, user, limit, before=before, since=since, until=until
    )
    return json_response({"user_id": str(user), "transactions": items, "next_before": next_before})


@router.get(
    "/users/{user_id}/transactions",
    summary="The caller's money movements (the seed's route): only for the caller's own id",
    responses=USER_ERRORS,
)  # fmt: skip
async def seed_movements(
    user_id: Annotated[UUID, Path()], user: CurrentUser, wallet: WalletDependencies,
    limit: Limit = MOVEMENTS_PAGE_DEFAULT, before: Before = None,
) -> Response:  # fmt: skip
    if user_id != user:
        raise not_found("user")
    items, next_before = await _movements(
        wallet, user, limit, before=before, since=None, until=None
    )
    return json_response({"transactions": items, "next_before": next_before})


async def _movements(
    wallet: WalletHttp, user: UUID, limit: int, *, before: UUID | None, since: date | None,
    until: date | None,
) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    if since is not None and until is not None and since > until:
        raise DomainHTTPError(422, "invalid_range", "`from` is after `to`.")
    before_sequence = None
    if before is not None:
        before_sequence = await wallet.reads.movement_sequence(user, before)
        if before_sequence is None:
            raise DomainHTTPError(422, "unknown_cursor", "`before` is not one of your movements.")
    rows = await wallet.reads.movements(
        user, limit, before_sequence, day_start(since), day_after(until),
    )  # fmt: skip
    items = [
        {"id": str(row["movement_id"]), "kind": row["kind"], "direction": row["direction"],
         "amount": row["amount"], "balance": row["balance"],
         "transfer_id": _text(row["transfer_id"]),
         "counterparty_user_id": _text(row["counterparty_user_id"]),
         "created_at": row["created_at"], "position": row["position"]}
        for row in rows
    ]  # fmt: skip
    return items, (items[-1]["id"] if len(rows) == limit else None)


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)


COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The answer (its own status and body)."},
    201: {"description": "The answer."},
    202: {"model": PendingResponse, "description": "Not decided yet (or not visible)."},
    401: error("missing_token or invalid_token."),
    409: error("The answer, or ambiguous_command_id."),
    422: error("The answer, or an invalid id."),
}


@router.get(
    "/wallet/commands/{command_id}", summary="The answer a wallet command got, once decided",
    responses=COMMAND_RESPONSES,
)  # fmt: skip
async def command_reply(
    command_id: Annotated[Identifier, Path()], user: UserOrOperator, wallet: WalletDependencies,
    source: Annotated[SourceText | None, Query(description="The command's source.")] = None,
) -> Response:  # fmt: skip
    """A user reads the answers of their own commands; the operator reads any (a top-up's)."""
    scope = None if user is None else str(user)
    return await stored_reply_response(wallet.replies, command_id, scope=scope, source=source)


router.add_api_route(
    "/commands/wallet/{command_id}", command_reply, methods=["GET"],
    summary="The answer a wallet command got (the same route, under /commands)",
    responses=COMMAND_RESPONSES,
)  # fmt: skip
