"""ASGI middleware: a correlation id on every request, Prometheus request metrics, and the
request shapes the routes never see (HEAD, URLs whose escapes are not UTF-8).

Written as plain ASGI (not BaseHTTPMiddleware) because it sits on every request's hot path.
"""

import time
import urllib.parse
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.errors import encode_json
from shared.observability.metrics import HTTP_REQUESTS, HTTP_SECONDS

CORRELATION_HEADER = b"x-correlation-id"
CORRELATION_ID_MAX_BYTES = 128


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = _correlation_id(scope)
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        status = 500
        header = (CORRELATION_HEADER, correlation_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        started = time.perf_counter()
        tokens = structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
            route = _route_template(scope)
            HTTP_SECONDS.labels(scope["method"], route).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()


def _correlation_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == CORRELATION_HEADER and 0 < len(value) <= CORRELATION_ID_MAX_BYTES:
            return str(value.decode("latin-1"))
    return str(uuid.uuid4())


def _route_template(scope: Scope) -> str:
    """The matched route's path template, so metrics never get one label per owner id."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestShapeMiddleware:
    """Three request shapes answered before routing.

    HEAD is answered as GET would be, without the body (uvicorn drops it, since the server's
    own scope still says HEAD): monitors and caches send HEAD, and a 405 would tell them the
    resource is missing. A path or query whose percent-escapes do not decode as UTF-8 is a 400:
    the server would otherwise decode `%FF` to U+FFFD and read a different owner than the one
    the client meant. A header that names one thing (SINGLETON_HEADERS) sent twice is a 400.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        undecodable = _undecodable_part(scope)
        if undecodable is not None:
            await _send_bad_request(
                send, f"The request {undecodable} has percent-escapes that are not UTF-8.",
                "invalid_url_encoding",
            )  # fmt: skip
            return
        repeated = _repeated_singleton(scope)
        if repeated is not None:
            await _send_bad_request(
                send, f"The {repeated} header appears more than once; send it once.",
                "repeated_header",
            )  # fmt: skip
            return
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, send)
        finally:
            # The metrics read the matched route from the server's scope, not from this copy.
            if "route" in as_get:
                scope["route"] = as_get["route"]


def _undecodable_part(scope: Scope) -> str | None:
    """'path' or 'query' when its percent-decoded bytes are not UTF-8, else None."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    query = scope.get("query_string", b"").replace(b"+", b" ")
    for part, raw in (("path", raw_path), ("query", query)):
        try:
            urllib.parse.unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return part
    return None


SINGLETON_HEADERS = {
    b"authorization": "Authorization",
    b"idempotency-key": "Idempotency-Key",
    b"x-api-key": "X-Api-Key",
    b"content-type": "Content-Type",
}
"""Headers that name one thing. Sent twice they are ambiguous, and a proxy reading the first
while the server reads the other would, for Idempotency-Key, turn a retry into a second
payment (found by probing: the server took the first and answered 201)."""


def _repeated_singleton(scope: Scope) -> str | None:
    seen: set[bytes] = set()
    for name, _ in scope["headers"]:
        lowered = name.lower()
        if lowered in SINGLETON_HEADERS:
            if lowered in seen:
                return SINGLETON_HEADERS[lowered]
            seen.add(lowered)
    return None


async def _send_bad_request(send: Send, detail: str, code: str) -> None:
    body = encode_json({"detail": detail, "code": code})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
