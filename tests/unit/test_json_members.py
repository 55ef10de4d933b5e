"""A JSON body naming one member twice is refused before any route reads it (found by the
issue 6 probe: `{"amount": 1, "amount": 900}` meant 900 here and 1 to readers keeping the
first)."""

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from services.gateway.json_keys import DuplicateMembersMiddleware, duplicate_member
from shared.http.errors import install_error_handlers


class Body(BaseModel):
    amount: int


def application() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(DuplicateMembersMiddleware)

    @app.post("/pay")
    async def pay(body: Body) -> dict[str, int]:
        return {"amount": body.amount}

    return app


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (b'{"amount": 1, "amount": 900}', "amount"),
        (b'{"a": {"b": 1, "b": 2}}', "b"),
        (b'[{"x": 1}, {"x": 1, "x": 1}]', "x"),
        (b'{"amount": 1}', None),
        (b"not json", None),
        (b"[" * 5_000 + b"]" * 5_000, None),
    ],
)
def test_duplicate_members_are_found_anywhere(body: bytes, name: str | None) -> None:
    assert duplicate_member(body) == name


@pytest.mark.asyncio
async def test_a_body_naming_a_member_twice_is_a_422_and_others_pass_unchanged() -> None:
    transport = httpx.ASGITransport(app=application())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        twice = await client.post(
            "/pay", content=b'{"amount": 1, "amount": 900}',
            headers={"content-type": "application/json; charset=utf-8"},
        )  # fmt: skip
        once = await client.post("/pay", json={"amount": 7})
    assert twice.status_code == 422
    assert twice.json()["code"] == "validation_error"
    assert twice.json()["detail"][0]["type"] == "json_invalid"
    assert (once.status_code, once.json()) == (200, {"amount": 7})
