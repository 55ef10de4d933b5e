"""Who is calling: an app backend (`X-Api-Key`), an operator (admin bearer token), or an end
user (a JWT from `/auth/token`, see `shared.http.user_tokens`).
"""

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shared.http.errors import DomainHTTPError
from shared.http.user_tokens import InvalidTokenError, UserTokens

api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False, description="An app's API key.")
bearer = HTTPBearer(auto_error=False, description="An operator token or a user's JWT.")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the gateway knows at start: API key to app name, and the operator token."""

    app_keys: Mapping[str, str]
    admin_token: str

    def app_for_key(self, key: str) -> str | None:
        # Compare every key in constant time so response timing reveals nothing about keys.
        found = None
        for known_key, app in self.app_keys.items():
            if hmac.compare_digest(known_key.encode(), key.encode()):
                found = app
        return found


def _credentials(request: Request) -> Credentials:
    """A helper, not a dependency (dependencies must be async to stay off the thread pool)."""
    credentials = request.app.state.credentials
    assert isinstance(credentials, Credentials)
    return credentials


async def require_app(
    request: Request, api_key: Annotated[str | None, Depends(api_key_header)]
) -> str:
    """The calling app, from its API key; 401 when the key is missing or unknown."""
    return app_for_request(request, api_key)


def app_for_request(request: Request, api_key: str | None = None) -> str:
    """`require_app` without FastAPI's dependency machinery, for the hottest read routes.

    A route using it documents the key with `API_KEY_SECURITY` in its `openapi_extra`.
    """
    if api_key is None:
        api_key = request.headers.get("x-api-key")
    if not api_key:
        raise DomainHTTPError(401, "missing_api_key", "Send the app's key in the X-Api-Key header.")
    app = _credentials(request).app_for_key(api_key)
    if app is None:
        raise DomainHTTPError(401, "invalid_api_key", "The X-Api-Key header is not a known key.")
    return app


async def require_operator(
    request: Request, token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    expected = _credentials(request).admin_token
    if token is None or not hmac.compare_digest(token.credentials.encode(), expected.encode()):
        raise DomainHTTPError(
            401, "invalid_operator_token", "This route needs the operator's bearer token.",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip


CallingApp = Annotated[str, Depends(require_app)]
API_KEY_SECURITY: dict[str, object] = {"security": [{"APIKeyHeader": []}]}
"""OpenAPI security requirement for routes that call `app_for_request` themselves."""
Operator = Annotated[None, Depends(require_operator)]


async def require_app_or_operator(
    request: Request,
    api_key: Annotated[str | None, Depends(api_key_header)],
    token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str | None:
    """An app (its name) or the operator (None); 401 for anyone else."""
    if api_key:
        return await require_app(request, api_key)
    await require_operator(request, token)
    return None


AppOrOperator = Annotated[str | None, Depends(require_app_or_operator)]


async def require_user(
    request: Request, token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> UUID:
    """The end user a valid JWT names; 401 for no token, or any token that is not valid."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if token is None:
        raise DomainHTTPError(
            401, "missing_token", "Send a user token: Authorization: Bearer <token from"
            " POST /auth/token>.", headers=challenge,
        )  # fmt: skip
    tokens = request.app.state.user_tokens
    assert isinstance(tokens, UserTokens)
    try:
        return tokens.verify(token.credentials)
    except InvalidTokenError:
        raise DomainHTTPError(
            401, "invalid_token", "The token is not valid: expired, altered, or not ours.",
            headers=challenge,
        ) from None  # fmt: skip


CurrentUser = Annotated[UUID, Depends(require_user)]


async def require_user_or_operator(
    request: Request, token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> UUID | None:
    """An end user (their id), or the operator (None), who may read what any user may."""
    expected = _credentials(request).admin_token
    if token is not None and hmac.compare_digest(token.credentials.encode(), expected.encode()):
        return None
    return await require_user(request, token)


UserOrOperator = Annotated[UUID | None, Depends(require_user_or_operator)]


@dataclass(frozen=True, slots=True)
class Writer:
    """Who writes a user's entry: the user themself (`app` None), or an app backend."""

    user: UUID | None
    app: str | None


async def require_user_or_app(
    request: Request,
    api_key: Annotated[str | None, Depends(api_key_header)],
    token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Writer:
    """An end user by their token, or else an app backend by its `X-Api-Key` (writing for any
    of its users). A backend that forwards its user's token acts as that user."""
    if token is None and api_key:
        return Writer(None, await require_app(request, api_key))
    return Writer(await require_user(request, token), None)


UserOrApp = Annotated[Writer, Depends(require_user_or_app)]
