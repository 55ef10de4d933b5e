"""A JSON body that names one member twice is refused before any route reads it.

`{"amount": 1, "amount": 900}` means 900 to Python's parser (the last wins) and 1 to others (a
proxy, a signature check, an audit log that keeps the first). Where money moves, two readers
of one request must never disagree, so the gateway answers such a body 422 `json_invalid`,
like any other body that is not valid JSON for it. Found by the issue 6 probe.

Runs inside the body limit, so it reads at most `REQUEST_BODY_MAX_BYTES`, and replays the body
to the application unchanged.
"""

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.limits import BodyTimeoutError
from shared.http.errors import encode_json, error_response

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class DuplicateMemberError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise DuplicateMemberError(name)
        members[name] = value
    return members


def duplicate_member(body: bytes) -> str | None:
    """The first member name an object of `body` repeats; None when there is none, or when
    the body is not JSON at all (the route answers that in its own words)."""
    try:
        json.loads(body, object_pairs_hook=_refuse_duplicates)
    except DuplicateMemberError as error:
        return error.name
    except (ValueError, RecursionError):
        return None
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name.lower() == b"content-type":
            media_type: bytes = value.split(b";")[0].strip().lower()
            return media_type == b"application/json" or media_type.endswith(b"+json")
    return False


class DuplicateMembersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        except BodyTimeoutError as error:
            # Raised outside the application, so its handlers cannot answer it: answered here
            # as they would (a body too large is answered by the body limit around this).
            response = error_response(408, "request_timeout", error.detail, error.headers)
            await response(scope, receive, send)
            return
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        name = duplicate_member(body)
        if name is not None:
            await _send_refusal(send, name)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _send_refusal(send: Send, name: str) -> None:
    shown = name if len(name) <= 64 and name.isprintable() else "a member"  # never echo much
    detail = {
        "type": "json_invalid", "loc": ["body"],
        "msg": f"A JSON object names \"{shown}\" more than once; send each member once.",
    }  # fmt: skip
    body = encode_json({"detail": [detail], "code": "validation_error"})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": body})
