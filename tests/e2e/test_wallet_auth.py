"""User tokens under attack, and the login lockout, on the real gateway.

Every forged, altered, expired or foreign token is a 401 `invalid_token`; repeated failures on
one account answer 429 with `Retry-After`, parallel guesses included.
"""

import asyncio
import base64
import hashlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import orjson
import pytest
import pytest_asyncio

from shared.settings import DEV_JWT_SECRET
from tests.support.stacks import LedgerStack
from tests.support.wallet_users import WalletUser, register

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
DEV_SIGNING_KEY = hashlib.sha256(DEV_JWT_SECRET.encode()).digest()
LOCK_FIRST_SECONDS = 30
PARALLEL_GUESSES = 10


@pytest_asyncio.fixture(loop_scope="session")
async def client(wallet: LedgerStack) -> AsyncIterator[httpx.AsyncClient]:
    async with wallet.client(None) as http:
        yield http


def claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": "ledgerbus", "aud": "ledgerbus-users", "sub": user_id, "iat": now,
            "exp": now + 600}  # fmt: skip
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def segment(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(document)).rstrip(b"=").decode()


def forged_tokens(user: WalletUser) -> dict[str, str]:
    header, _, signature = user.token.split(".")
    other = str(uuid.uuid4())
    return {
        "alg none": f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims(user.user_id))}.",
        "tampered payload": f"{header}.{segment(claims(other))}.{signature}",
        "expired": jwt.encode(claims(user.user_id, exp=int(time.time()) - 60), DEV_SIGNING_KEY),
        "wrong audience": jwt.encode(claims(user.user_id, aud="someone-else"), DEV_SIGNING_KEY),
        "wrong issuer": jwt.encode(claims(user.user_id, iss="evil"), DEV_SIGNING_KEY),
        "no expiry": jwt.encode(claims(user.user_id, exp=None), DEV_SIGNING_KEY),
        "HS512": jwt.encode(claims(user.user_id), DEV_SIGNING_KEY * 2, algorithm="HS512"),
        "other secret": jwt.encode(claims(user.user_id), b"k" * 32),
        "raw secret as key": jwt.encode(claims(user.user_id), DEV_JWT_SECRET.encode().ljust(32)),
        "not a jwt": "hello",
        "huge": "a" * 10_000,
        "subject not a user id": jwt.encode(claims("admin"), DEV_SIGNING_KEY),
    }


async def test_every_forged_or_foreign_token_is_a_401(client: httpx.AsyncClient) -> None:
    user = await register(client, "jwt")
    assert (await client.get("/wallet", headers=user.auth)).status_code == 200
    for name, token in forged_tokens(user).items():
        answer = await client.get("/wallet", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (name, answer.text)
        assert answer.json()["code"] == "invalid_token", name
        assert answer.headers["www-authenticate"] == "Bearer", name
    for headers in ({}, {"Authorization": f"Basic {user.token}"}, {"Authorization": "Bearer"}):
        answer = await client.get("/wallet", headers=headers)
        assert (answer.status_code, answer.json()["code"]) == (401, "missing_token"), headers


async def test_the_operator_token_is_not_a_user_and_a_user_is_not_the_operator(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client, "roles")
    as_operator = await client.get("/wallet", headers={"Authorization": "Bearer dev-admin-token"})
    assert (as_operator.status_code, as_operator.json()["code"]) == (401, "invalid_token")
    as_user = await client.get("/system/", headers=user.auth)
    assert (as_user.status_code, as_user.json()["code"]) == (401, "invalid_operator_token")


async def guess(client: httpx.AsyncClient, email: str, pin: str) -> httpx.Response:
    return await client.post("/auth/token", data={"username": email, "password": pin})


async def test_repeated_failures_lock_the_account_with_retry_after(
    client: httpx.AsyncClient, wallet: LedgerStack
) -> None:
    user = await register(client, "lockout")
    statuses = [(await guess(client, user.email, "00000")).status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = await guess(client, user.email, user.pin)  # even the right PIN waits
    assert (locked.status_code, locked.json()["code"]) == (429, "too_many_attempts")
    assert 1 <= int(locked.headers["retry-after"]) <= LOCK_FIRST_SECONDS
    other = await register(client, "lockout-other")
    assert (await guess(client, other.email, other.pin)).status_code == 200  # per account
    await wallet.fetch(
        "UPDATE wallet.login_attempts SET locked_until = now() - interval '1 second'"
        " WHERE user_id = $1",
        uuid.UUID(user.user_id),
    )
    assert (await guess(client, user.email, user.pin)).status_code == 200  # one more try
    again = [(await guess(client, user.email, "00000")).status_code for _ in range(6)]
    assert again == [401] * 5 + [429]  # a success reset the count


async def test_parallel_guesses_are_counted_before_they_are_checked(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client, "parallel")
    answers = await asyncio.gather(
        *(guess(client, user.email, f"{index:05d}") for index in range(PARALLEL_GUESSES))
    )
    counted = Counter(answer.status_code for answer in answers)
    assert counted[401] <= 5, counted
    assert counted[429] >= PARALLEL_GUESSES - 5, counted
    assert set(counted) <= {401, 429}, counted
