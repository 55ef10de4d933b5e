"""Every error answer is JSON: domain errors `{"detail", "code"}`, request validation in
FastAPI's 422 shape plus a `code`, an unavailable dependency 503 with `Retry-After`, and even
an unforeseen error a JSON 500 naming the request's correlation id (never a bare 500)."""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson
import redis.exceptions
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from shared.kafka.log_end import LogEndUnknownError
from shared.logs import get_logger

VALIDATION_ERRORS_SHOWN_MAX = 20
"""A body with thousands of bad fields gets the first few explained, not an echo of itself."""
ECHOED_INPUT_MAX_CHARACTERS = 64
ECHOED_TEXT_MAX_CHARACTERS = 300
DEPENDENCY_RETRY_AFTER_SECONDS = 2
JSON_OPTIONS = orjson.OPT_UTC_Z
"""UTC times render as `...Z`, the same spelling every stored answer uses."""

DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    LogEndUnknownError,
    ConnectionError,
    OSError,
    TimeoutError,
)
"""Failures that mean a server we depend on is down or overloaded: 503, try again shortly."""
REDIS_BUSY_REPLIES = ("BUSY", "OOM", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
"""Redis error replies that say the server cannot serve now (a long script, no memory, a
failover), not that the command was wrong: 503 like a dropped connection."""

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 408: "request_timeout",
              413: "body_too_large", 415: "unsupported_media_type",
              429: "too_many_requests"}  # fmt: skip

HTTP_METHOD_NOT_ALLOWED = 405

logger = get_logger(__name__)


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: Starlette's 405 names only the first
    route's, where several routes (GET, PATCH, DELETE) share one path. HEAD goes with GET."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= set(route_methods)
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


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


def _fallback(value: Any) -> str:
    """asyncpg returns its own UUID type; anything else unknown is a bug worth seeing."""
    if type(value).__name__ == "UUID":
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def encode_json(body: Any) -> bytes:
    return orjson.dumps(body, default=_fallback, option=JSON_OPTIONS)


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Serialise with orjson and skip response-model validation on hot read paths."""
    return Response(
        encode_json(body), status_code=status_code, media_type="application/json", headers=headers
    )


def error_response(
    status_code: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    return json_response({"detail": detail, "code": code}, status_code, headers)


def safe_text(value: object, limit: int = ECHOED_TEXT_MAX_CHARACTERS) -> str:
    """Text that can always be encoded (lone surrogates escaped) and is bounded."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "..."


JSON_INTEGER_MAX = 2**63 - 1
"""orjson (and many JSON readers) cannot hold wider integers; such an input is not echoed."""


def _echo(value: object) -> object | None:
    """A short input is echoed as FastAPI would; a long, nested or too wide one is left out."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        # JSON has no infinity or NaN (`1e400` parses as infinity); echoing null would mislead.
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value if -JSON_INTEGER_MAX - 1 <= value <= JSON_INTEGER_MAX else None
    if isinstance(value, str) and len(value) <= ECHOED_INPUT_MAX_CHARACTERS:
        return safe_text(value)
    return None


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    shown = []
    for error in errors[:VALIDATION_ERRORS_SHOWN_MAX]:
        item: dict[str, Any] = {
            "type": safe_text(error.get("type", "invalid")),
            "loc": [part if isinstance(part, int) else safe_text(part) for part in error["loc"]],
            "msg": safe_text(error.get("msg", "invalid")),
        }
        echoed = _echo(error.get("input"))
        if echoed is not None:
            item["input"] = echoed
        shown.append(item)
    return shown


def install_error_handlers(app: FastAPI) -> None:
    async def domain_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, DomainHTTPError)
        body = {"detail": error.detail, "code": error.code, **error.extra}
        return json_response(body, error.status_code, error.headers)

    async def invalid_request(_: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        body = {"detail": validation_errors(error.errors()), "code": "validation_error"}
        return json_response(body, 422)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = HTTP_CODES.get(error.status_code, "http_error")
        headers = error.headers
        if error.status_code == HTTP_METHOD_NOT_ALLOWED:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return error_response(error.status_code, code, safe_text(error.detail), headers)

    async def dependency_down(request: Request, error: Exception) -> Response:
        logger.warning("a dependency is unavailable", path=request.url.path, error=repr(error))
        return error_response(
            503, "dependency_unavailable",
            "A server this request needs (PostgreSQL, Kafka or Redis) is not answering; retry"
            " shortly.", {"Retry-After": str(DEPENDENCY_RETRY_AFTER_SECONDS)},
        )  # fmt: skip

    async def unforeseen(request: Request, error: Exception) -> Response:
        correlation_id = request.scope.get("state", {}).get("correlation_id", "unknown")
        logger.error("unforeseen error", path=request.url.path, exc_info=error)
        return error_response(
            500, "internal_error",
            f"An unexpected error occurred; it was logged with correlation id {correlation_id}.",
        )  # fmt: skip

    async def redis_refused(request: Request, error: Exception) -> Response:
        if str(error).startswith(REDIS_BUSY_REPLIES):
            return await dependency_down(request, error)
        return await unforeseen(request, error)

    app.add_exception_handler(redis.exceptions.ResponseError, redis_refused)
    app.add_exception_handler(DomainHTTPError, domain_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    for error_type in DEPENDENCY_ERRORS:
        app.add_exception_handler(error_type, dependency_down)
    app.add_exception_handler(Exception, unforeseen)
