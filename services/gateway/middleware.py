"""ASGI middleware: a correlation id on every request and Prometheus request metrics.

Written as plain ASGI (not BaseHTTPMiddleware) because it sits on every request's hot path.
"""

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
