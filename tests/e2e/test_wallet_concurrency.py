"""Transfers under concurrency, on the real processes (issue 6):

- 20 users, 2,000 concurrent random transfers including retries with the same key: no balance
  negative at any decision in the log, conservation holds, every 201 is one completed transfer
  and every retry got the identical answer;
- one wallet with funds for 37 transfers sends 100 at once: exactly 37 succeed.
"""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from tests.support.stacks import LedgerStack
from tests.support.wallet_load import (
    OPENING_BALANCE,
    check_invariants,
    random_plans,
    send_all,
    system_totals,
)
from tests.support.wallet_users import WalletUser, register, transfer

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
USERS = 20
TRANSFERS = 2_000
RETRY_SHARE = 0.1
CONCURRENCY = 100
AMOUNT_MAX_PAISA = 100_000
FUNDED_TRANSFERS = 37
ATTEMPTED_TRANSFERS = 100


@pytest_asyncio.fixture(loop_scope="session")
async def client(wallet: LedgerStack) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=wallet.gateway_url, limits=limits, timeout=60) as http:
        yield http


async def users(client: httpx.AsyncClient, count: int, tag: str) -> list[WalletUser]:
    return list(await asyncio.gather(*(register(client, f"{tag}{i}") for i in range(count))))


async def test_two_thousand_concurrent_transfers_keep_every_invariant(
    wallet: LedgerStack, client: httpx.AsyncClient
) -> None:
    people = await users(client, USERS, "load")
    plans = random_plans(people, TRANSFERS, RETRY_SHARE, seed=6, amount_max=AMOUNT_MAX_PAISA)
    started = time.monotonic()
    run = await send_all(client, plans, CONCURRENCY)
    seconds = time.monotonic() - started
    answered = Counter(outcome.status for outcome in run.outcomes)
    print(f"\n{TRANSFERS} transfer requests in {seconds:.1f} s: {dict(answered)}")
    assert not [outcome.error for outcome in run.outcomes if outcome.error], answered
    assert set(answered) <= {201, 202, 409}, answered
    codes = await check_invariants(wallet, client, people, run)
    assert codes["completed"] > 0 and codes["insufficient_funds"] > 0, codes
    totals = await system_totals(client)
    assert totals["in_flight"] == 0
    assert totals["total_user_balance"] + totals["system_balance"] == 0


async def test_a_wallet_funded_for_37_transfers_sends_100_and_exactly_37_succeed(
    client: httpx.AsyncClient,
) -> None:
    sender, recipient = await users(client, 2, "exact")
    amount = OPENING_BALANCE // FUNDED_TRANSFERS
    assert amount * FUNDED_TRANSFERS <= OPENING_BALANCE < amount * (FUNDED_TRANSFERS + 1)
    answers = await asyncio.gather(
        *(transfer(client, sender, recipient, amount) for _ in range(ATTEMPTED_TRANSFERS))
    )
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {201: FUNDED_TRANSFERS, 409: ATTEMPTED_TRANSFERS - FUNDED_TRANSFERS}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"insufficient_funds"}
