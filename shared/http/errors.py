"""Domain errors answer `{"detail": "<sentence>", "code": "<code>"}` with their status."""

from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response


class DomainHTTPError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.headers = headers
        self.extra = extra or {}


JSON_OPTIONS = orjson.OPT_UTC_Z
"""UTC times render as `...Z`, the same spelling every stored answer uses."""


def _fallback(value: Any) -> str:
    """asyncpg returns its own UUID type; anything else unknown is a bug worth seeing."""
    if type(value).__name__ == "UUID":
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def encode_json(body: Any) -> bytes:
    return orjson.dumps(body, default=_fallback, option=JSON_OPTIONS)


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Serialise with orjson and skip response-model validation on hot read paths."""
    return Response(
        encode_json(body), status_code=status_code, media_type="application/json", headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    async def domain_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, DomainHTTPError)
        body = {"detail": error.detail, "code": error.code, **error.extra}
        return json_response(body, error.status_code, error.headers)

    app.add_exception_handler(DomainHTTPError, domain_error)
