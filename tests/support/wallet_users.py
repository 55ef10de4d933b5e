"""Wallet users for tests: register through HTTP, log in, and call as them."""

import uuid
from dataclasses import dataclass

import httpx

from tests.support.stacks import LedgerStack

OPERATOR = {"Authorization": "Bearer dev-admin-token"}


@dataclass(frozen=True, slots=True)
class WalletUser:
    user_id: str
    email: str
    pin: str
    token: str
    position: str | None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: httpx.AsyncClient, tag: str, pin: str = "12345") -> WalletUser:
    email = f"{tag}-{uuid.uuid4().hex[:8]}@example.com"
    created = await client.post(
        "/auth/register", json={"name": f"User {tag}", "email": email, "pin": pin}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["wallet"] == "open", body
    token = await login(client, email, pin)
    return WalletUser(body["id"], email, pin, token, body["position"])


async def login(client: httpx.AsyncClient, email: str, pin: str) -> str:
    answer = await client.post("/auth/token", data={"username": email, "password": pin})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert isinstance(token, str)
    return token


async def transfer(
    client: httpx.AsyncClient, sender: WalletUser, recipient: WalletUser, amount: int,
    key: str | None = None,
) -> httpx.Response:  # fmt: skip
    return await client.post(
        "/wallet/transfers",
        json={"to_user_id": recipient.user_id, "amount": amount},
        headers=sender.auth | {"Idempotency-Key": key or uuid.uuid4().hex},
    )


def wallet_client(stack: LedgerStack) -> httpx.AsyncClient:
    return stack.client(None)
