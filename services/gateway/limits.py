"""A cap on request bodies: a body larger than `REQUEST_BODY_MAX_BYTES` is refused with a
JSON 413, without being read or parsed (a 5 MB body must not cost 5 MB of parsing, nor be
echoed back in a validation error).

A declared `Content-Length` over the cap is refused before reading; a chunked body is counted
as it arrives. Either way the connection is closed after the answer, because the rest of the
body was never read and cannot be told apart from the next request.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.errors import encode_json

REQUEST_BODY_MAX_BYTES = 64 * 1024
"""No request of the contract needs more than a few hundred bytes."""


class BodyTooLargeError(Exception):
    pass


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
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError
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
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        detail = f"The request body exceeds {self.max_bytes} bytes."
        body = encode_json({"detail": detail, "code": "body_too_large"})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
