"""The body limits as ASGI: a body trickling in a byte at a time is cut off by the total bound,
not only by the wait between pieces (the bounds are shortened here; the e2e test in
tests/e2e/test_gateway_edges.py shows the real idle bound on the real server)."""

import asyncio
import time

import orjson
import pytest
from fastapi import FastAPI, Request
from starlette.types import Message

from services.gateway import limits
from shared.http.errors import install_error_handlers

IDLE_SECONDS = 0.5
TOTAL_SECONDS = 1.0
TRICKLE_SECONDS = 0.1


def app_reading_bodies() -> limits.BodyLimitMiddleware:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    return limits.BodyLimitMiddleware(app)


async def call(body_pieces: int) -> tuple[list[Message], float]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/echo", "raw_path": b"/echo", "query_string": b"",
        "headers": [(b"content-length", str(body_pieces).encode())], "client": ("t", 1),
        "server": ("t", 2), "root_path": "",
    }  # fmt: skip
    sent: list[Message] = []
    pieces = iter(range(body_pieces))

    async def receive() -> Message:
        index = next(pieces, None)
        if index is None:
            await asyncio.Event().wait()  # the client sends nothing more
        await asyncio.sleep(TRICKLE_SECONDS)
        return {"type": "http.request", "body": b"x", "more_body": index != body_pieces - 1}

    async def send(message: Message) -> None:
        sent.append(message)

    started = time.monotonic()
    await app_reading_bodies()(scope, receive, send)
    return sent, time.monotonic() - started


@pytest.fixture(autouse=True)
def short_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "REQUEST_BODY_IDLE_TIMEOUT_SECONDS", IDLE_SECONDS)
    monkeypatch.setattr(limits, "REQUEST_BODY_TOTAL_TIMEOUT_SECONDS", TOTAL_SECONDS)


async def test_a_body_trickling_in_is_cut_off_by_the_total_bound() -> None:
    sent, seconds = await call(body_pieces=1_000)
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert orjson.loads(sent[1]["body"])["code"] == "request_timeout"
    assert TOTAL_SECONDS - TRICKLE_SECONDS <= seconds < TOTAL_SECONDS + IDLE_SECONDS


async def test_a_body_that_arrives_in_time_is_read_whole() -> None:
    sent, _ = await call(body_pieces=3)
    assert sent[0]["status"] == 200
    assert orjson.loads(sent[1]["body"]) == {"bytes": 3}
