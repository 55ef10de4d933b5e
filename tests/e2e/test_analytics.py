"""Analytics through HTTP on the real processes (issue 7, ADR 0017):

- the summary and the seed's three routes over wallet movements and recorded transactions
  (amended and voided), with date ranges and a tie, equal to a brute force kept by the test;
- tracking statistics per year and type, and an app's ledger totals;
- another user's id answers 404 on every analytics route; no credential 401; the operator
  reads all; an app reads only its own ledger totals;
- the audit recomputes every aggregate from the log: a tampered field is named, a rebuild
  (`ledgerbus analytics rebuild`) repairs it while the routes keep answering.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from ledgerbus.stack import all_processes
from shared.infra.provision import Infrastructure
from tests.support.analytics import Movement, brute_summary
from tests.support.commands import ledgerbus
from tests.support.stacks import LedgerStack, running_stack
from tests.support.waiting import eventually
from tests.support.wallet_users import OPERATOR, WalletUser, register, transfer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
TRAVELAI = {"X-Api-Key": "dev-travelai-key"}
HEALTHAI = {"X-Api-Key": "dev-healthai-key"}
OPENING_PAISA = 500_000


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("analytics") / "stack.log"
    async with running_stack(infrastructure, log_path, all_processes()) as running:
        await running.wait_until_ready()
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def client(stack: LedgerStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client(None) as http:
        yield http


async def record(
    client: httpx.AsyncClient, user: WalletUser, amount: int, kind: str, day: str
) -> dict[str, Any]:
    answer = await client.post(
        "/transactions", headers=user.auth,
        json={"transaction_amount": amount, "transaction_type": kind, "transaction_date": day},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def summary_of(
    client: httpx.AsyncClient, user: WalletUser, position: str | None, **params: str
) -> dict[str, Any]:
    query = params | ({"min_position": position} if position else {})
    answer = await client.get(
        f"/analytics/users/{user.user_id}/summary", headers=user.auth, params=query
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body.pop("as_of").endswith("Z")
    return body


async def test_the_summary_and_the_seed_routes_equal_a_brute_force(
    client: httpx.AsyncClient,
) -> None:
    alice, bob = await register(client, "alice"), await register(client, "bob")
    today = date.today()
    movements: list[Movement] = [(today, "credit", OPENING_PAISA)]
    records = [(1_000, "credit", "2026-01-01"), (250, "debit", "2026-01-01"),
               (333, "credit", "2026-01-02"), (401, "debit", "2026-01-02")]  # fmt: skip
    for amount, kind, day in records:
        await record(client, alice, amount, kind, day)
        movements.append((date.fromisoformat(day), kind, amount))
    amended = await record(client, alice, 500, "credit", "2026-01-03")
    patched = await client.patch(
        f"/transactions/{amended['id']}", headers=alice.auth,
        json={"transaction_amount": 700, "transaction_date": "2026-01-04"},
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    movements.append((date(2026, 1, 4), "credit", 700))
    voided = await record(client, alice, 9_999, "debit", "2026-01-02")
    gone = await client.delete(f"/transactions/{voided['id']}", headers=alice.auth)
    assert gone.status_code == 200, gone.text
    sent = await transfer(client, alice, bob, 100)
    assert sent.status_code == 201, sent.text
    movements.append((today, "debit", 100))
    position = sent.json()["position"]

    assert await summary_of(client, alice, position) == brute_summary(movements)
    first, second = date(2026, 1, 1), date(2026, 1, 2)
    ranged = await summary_of(client, alice, None, **{"from": "2026-01-01", "to": "2026-01-02"})
    assert ranged == brute_summary(movements, first, second)
    assert ranged["highest_transaction_day"] == {"date": "2026-01-01", "count": 2}  # a tie
    assert await summary_of(client, alice, None, to="2026-01-02") == brute_summary(
        movements, None, second
    )
    assert await summary_of(client, alice, None, **{"from": "2026-01-03"}) == brute_summary(
        movements, date(2026, 1, 3)
    )
    empty = await summary_of(client, alice, None, **{"from": "2000-01-01", "to": "2000-01-31"})
    assert empty == brute_summary([])
    assert (empty["transaction_count"], empty["highest_transaction_day"]) == (0, None)

    await eventually(
        lambda: summary_of(client, bob, None), lambda body: body["transaction_count"] == 2,
        "bob's credit counted",
    )  # fmt: skip
    await _seed_routes(client, alice, movements)


async def _seed_routes(
    client: httpx.AsyncClient, alice: WalletUser, movements: list[Movement]
) -> None:
    expected = brute_summary(movements)
    base = f"/analytics/{alice.user_id}"
    average = (await client.get(f"{base}/average_transaction_value", headers=alice.auth)).json()
    assert (average["average_transaction_value"], average["transaction_count"]) == (
        expected["average_transaction_value"], expected["transaction_count"]
    )  # fmt: skip
    highest = (await client.get(f"{base}/highest_transaction_day", headers=alice.auth)).json()
    assert highest["highest_transaction_day"] == expected["highest_transaction_day"]["date"]
    params = {"start_date": "2026-01-01", "end_date": "2026-01-02"}
    totals = await client.get(f"{base}/transaction_totals", headers=alice.auth, params=params)
    window = brute_summary(movements, date(2026, 1, 1), date(2026, 1, 2))["totals"]
    assert (totals.json()["credit"], totals.json()["debit"]) == (window["credit"], window["debit"])
    none = await client.get(
        f"{base}/transaction_totals", headers=alice.auth,
        params={"start_date": "2001-01-01", "end_date": "2001-01-02"},
    )  # fmt: skip
    assert (none.status_code, none.json()["code"]) == (404, "no_transactions")
    backwards = await client.get(
        f"{base}/transaction_totals", headers=alice.auth,
        params={"start_date": "2026-01-02", "end_date": "2026-01-01"},
    )  # fmt: skip
    assert (backwards.status_code, backwards.json()["code"]) == (422, "invalid_range")


async def test_tracking_statistics_count_entries_per_year_and_type(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client, "stats")
    entries = [("food", "2025-02-01", {"food": "Rice", "calories": 300}),
               ("food", "2025-02-02", {"food": "Dal", "calories": 200}),
               ("sleep", "2026-03-01", {"hours": 8})]  # fmt: skip
    position = None
    for kind, day, meta in entries:
        answer = await client.post(
            "/tracking/entries", headers=user.auth,
            json={"type": kind, "date": day, "meta_data": meta},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        position = answer.json()["position"]
    assert position is not None
    path = f"/analytics/users/{user.user_id}/tracking"
    year = await client.get(
        path, headers=user.auth, params={"year": 2025, "min_position": position}
    )
    assert year.status_code == 200, year.text
    body = year.json()
    assert (body["year"], body["entries"], body["by_type"]) == (
        2025, 2, {"food": 2, "workout": 0, "sleep": 0, "meditation": 0}
    )  # fmt: skip
    every = (await client.get(path, headers=user.auth)).json()
    assert (every["entries"], sorted(every["years"])) == (3, ["2025", "2026"])
    assert every["years"]["2026"]["by_type"]["sleep"] == 1


async def test_an_apps_ledger_totals_count_its_entries(client: httpx.AsyncClient) -> None:
    path = "/analytics/apps/travelai/ledger"
    before = (await client.get(path, headers=TRAVELAI)).json()
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    position = None
    for operation in ("BOOKING_REWARD", "LOYALTY_BONUS", "CREDIT_SPEND"):
        answer = await client.post(
            "/ledger/", headers=TRAVELAI,
            json={"owner_id": owner, "operation": operation, "nonce": uuid.uuid4().hex},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        position = answer.json()["position"]
    after = await client.get(path, headers=TRAVELAI, params={"min_position": position})
    assert after.status_code == 200, after.text
    now = after.json()
    assert now["entries"] - before["entries"] == 3
    assert (now["credited"] - before["credited"], now["debited"] - before["debited"]) == (7, 1)
    assert now["net"] == now["credited"] - now["debited"]
    assert now["operations"]["BOOKING_REWARD"] - before["operations"].get("BOOKING_REWARD", 0) == 1
    other = await client.get(path, headers=HEALTHAI)
    assert (other.status_code, other.json()["code"]) == (404, "unknown_app")
    assert (await client.get(path, headers=OPERATOR)).status_code == 200
    unknown = await client.get("/analytics/apps/nosuchapp/ledger", headers=OPERATOR)
    assert unknown.status_code == 404


def analytics_routes(user_id: str) -> list[str]:
    return [
        f"/analytics/users/{user_id}/summary",
        f"/analytics/{user_id}/average_transaction_value",
        f"/analytics/{user_id}/highest_transaction_day",
        f"/analytics/{user_id}/transaction_totals",
        f"/analytics/users/{user_id}/tracking",
    ]


async def test_the_cross_user_matrix_on_every_analytics_route(client: httpx.AsyncClient) -> None:
    owner, other = await register(client, "owner"), await register(client, "other")
    highest = f"/analytics/{owner.user_id}/highest_transaction_day"
    await eventually(
        lambda: client.get(highest, headers=owner.auth),
        lambda answer: answer.status_code == 200,
        "the opening counted",
    )
    for path in analytics_routes(owner.user_id):
        own = await client.get(path, headers=owner.auth)
        assert own.status_code == 200, (path, own.text)
        theirs = await client.get(path, headers=other.auth)
        assert (theirs.status_code, theirs.json()["code"]) == (404, "user_not_found"), path
        assert (await client.get(path)).status_code == 401, path
        assert (await client.get(path, headers=HEALTHAI)).status_code == 401, path
        assert (await client.get(path, headers=OPERATOR)).status_code == 200, path
    app_route = "/analytics/apps/healthai/ledger"
    assert (await client.get(app_route, headers=owner.auth)).status_code == 401


async def test_the_audit_names_a_tampered_aggregate_and_a_rebuild_repairs_it(
    stack: LedgerStack, client: httpx.AsyncClient
) -> None:
    user = await register(client, "tamper")
    await summary_of(client, user, user.position)
    redis = Redis.from_url(stack.environment["REDIS_URL"], decode_responses=True)
    try:
        live = await redis.get(f"{stack.analytics_prefix}generation")
        assert isinstance(live, str)
        key = f"{stack.analytics_prefix}{live}:user:{user.user_id}"
        await redis.hincrby(key, f"{date.today().isoformat()}:credit", 5)
        found = await ledgerbus(stack.environment, "audit", "--service", "analytics")
        assert found.exit_code == 1, found.output
        assert user.user_id in found.output
        rebuilt = await ledgerbus(stack.environment, "analytics", "rebuild")
        assert rebuilt.exit_code == 0, rebuilt.output
        assert await redis.get(f"{stack.analytics_prefix}generation") != live
        assert await redis.exists(key) == 0  # the old generation is gone
    finally:
        await redis.aclose()
    repaired = await summary_of(client, user, None)
    assert repaired["totals"]["credit"] == OPENING_PAISA
    later = await record(client, user, 42, "debit", "2026-02-02")  # the aggregator goes on
    assert (await summary_of(client, user, later["position"]))["totals"]["debit"] == 42
    matched = await ledgerbus(stack.environment, "audit", "--service", "all")
    assert matched.exit_code == 0, matched.output


async def test_a_burst_of_reads_past_the_redis_pool_waits_rather_than_failing(
    client: httpx.AsyncClient,
) -> None:
    """More concurrent reads than Redis connections: each waits for a connection, none is a
    false 503 (a black-box probe found 27 of 80 answered `dependency_unavailable`)."""
    user = await register(client, "burst")
    await summary_of(client, user, user.position)
    path = f"/analytics/users/{user.user_id}/summary"
    answers = await asyncio.gather(*(client.get(path, headers=user.auth) for _ in range(150)))
    assert [answer.status_code for answer in answers] == [200] * 150
