"""A cap on request bodies: a body larger than `REQUEST_BODY_MAX_BYTES` is refused with a
JSON 413 and never parsed (a 5 MB body must not cost 5 MB of parsing, nor be echoed back in a
validation error).

The refused body is still read and thrown away, up to `REQUEST_BODY_DRAIN_MAX_BYTES`, before
the answer: a client still sending when the server answers and closes sees a broken pipe
instead of the 413 (httpx, requests and most others do), and the drained connection stays
usable for the next request. A body beyond the drain cap is answered at once and the
connection closed.

A body that stops arriving for `REQUEST_BODY_IDLE_TIMEOUT_SECONDS`, or is not complete within
`REQUEST_BODY_TOTAL_TIMEOUT_SECONDS`, is answered 408 and the connection closed: uvicorn bounds
the wait between requests, not within one, so a client that declares a length and then sends
nothing, or a byte every few seconds, would otherwise hold a task and a connection for as long
as it liked.
"""

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.errors import encode_json

REQUEST_BODY_MAX_BYTES = 64 * 1024
"""No request of the contract needs more than a few hundred bytes."""
REQUEST_BODY_DRAIN_MAX_BYTES = 32 * 1024 * 1024
"""Past this, reading a refused body costs more than a client's broken pipe."""
REQUEST_BODY_IDLE_TIMEOUT_SECONDS = 10.0
"""The longest wait for the next piece of a request body once the headers have arrived."""
REQUEST_BODY_TOTAL_TIMEOUT_SECONDS = 30.0
"""The longest a whole body may take, counted from the application's first read of it."""


class BodyTooLargeError(HTTPException):
    """Raised while the app reads a body past the cap. FastAPI turns any other exception
    raised while it reads a body into a 400, but lets an HTTPException through, and the
    gateway's handler answers it as JSON 413 `body_too_large`."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds {max_bytes} bytes.")


class BodyTimeoutError(HTTPException):
    """Raised when the next piece of a body does not arrive in time; answered as JSON 408
    `request_timeout`, and the connection closed since the rest of the body is unread."""

    def __init__(self, detail: str) -> None:
        super().__init__(408, detail, headers={"Connection": "close"})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = REQUEST_BODY_MAX_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(receive, send, 0, declared)
            return
        received = 0
        body_done = False
        started = False

        deadline: float | None = None

        async def counted_receive() -> Message:
            nonlocal received, body_done, deadline
            if body_done:
                # After the body, a receive waits for the client to disconnect: no bound.
                return await receive()
            now = asyncio.get_running_loop().time()
            deadline = deadline or now + REQUEST_BODY_TOTAL_TIMEOUT_SECONDS
            message = await _receive_within(
                receive, min(REQUEST_BODY_IDLE_TIMEOUT_SECONDS, deadline - now)
            )
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLargeError:
            if started:
                raise
            await self._refuse(receive, send, received if not body_done else -1, declared)

    async def _refuse(self, receive: Receive, send: Send, read: int, declared: int | None) -> None:
        """Drain what is left of the body (within the cap), then answer 413."""
        drained = read < 0 or await _drain(receive, read, declared)
        detail = f"The request body exceeds {self.max_bytes} bytes."
        body = encode_json({"detail": detail, "code": "body_too_large"})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if not drained:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _receive_within(receive: Receive, seconds: float) -> Message:
    """The next message, or a 408 when it does not come in time."""
    try:
        return await asyncio.wait_for(receive(), max(seconds, 0.0))
    except TimeoutError:
        raise BodyTimeoutError(
            f"The request body stopped arriving (at most {REQUEST_BODY_IDLE_TIMEOUT_SECONDS:g} s"
            f" between pieces, {REQUEST_BODY_TOTAL_TIMEOUT_SECONDS:g} s in all)."
        ) from None


async def _drain(receive: Receive, read: int, declared: int | None) -> bool:
    """True when the whole body was read (and thrown away) within the drain cap."""
    if declared is not None and declared > REQUEST_BODY_DRAIN_MAX_BYTES:
        return False
    while read <= REQUEST_BODY_DRAIN_MAX_BYTES:
        try:
            message = await asyncio.wait_for(receive(), REQUEST_BODY_IDLE_TIMEOUT_SECONDS)
        except TimeoutError:
            return False
        if message["type"] != "http.request":
            return False
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
