"""Every point of the contract's credit-ledger section, through HTTP on real processes."""

import asyncio
import re
import uuid
from typing import Any

import httpx
import orjson
import pytest

from tests.support.stacks import TRAVELAI_KEY, LedgerStack, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ENTRY_FIELDS = {
    "id",
    "app",
    "owner_id",
    "operation",
    "amount",
    "nonce",
    "created_on",
    "balance",
    "position",
}
HEALTHAI_OPERATIONS = {
    "DAILY_REWARD": 1,
    "SIGNUP_CREDIT": 3,
    "CREDIT_SPEND": -1,
    "CREDIT_ADD": 10,
    "CONTENT_CREATION": -5,
    "CONTENT_ACCESS": 0,
}
TRAVELAI_OPERATIONS = {
    "DAILY_REWARD": 1,
    "SIGNUP_CREDIT": 3,
    "CREDIT_SPEND": -1,
    "CREDIT_ADD": 10,
    "BOOKING_REWARD": 5,
    "LOYALTY_BONUS": 2,
}


def owner() -> str:
    return f"owner-{uuid.uuid4().hex[:10]}"


async def post_entry(
    client: httpx.AsyncClient, owner_id: str, operation: str, nonce: str
) -> httpx.Response:
    return await client.post(
        "/ledger/", json={"owner_id": owner_id, "operation": operation, "nonce": nonce}
    )


async def test_catalogs_are_served_per_app(ledger: LedgerStack) -> None:
    async with ledger.client() as healthai, ledger.client(TRAVELAI_KEY) as travelai:
        response = await healthai.get("/apps/healthai/operations")
        assert response.status_code == 200
        assert response.json() == {"app": "healthai", "operations": HEALTHAI_OPERATIONS}
        response = await travelai.get("/apps/travelai/operations")
        assert response.json() == {"app": "travelai", "operations": TRAVELAI_OPERATIONS}
        other = await healthai.get("/apps/travelai/operations")
        assert other.status_code == 404 and other.json()["code"] == "unknown_app"


async def test_an_entry_is_created_with_every_field(ledger: LedgerStack) -> None:
    owner_id, nonce = owner(), uuid.uuid4().hex
    async with ledger.client() as client:
        response = await post_entry(client, owner_id, "CREDIT_ADD", nonce)
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == ENTRY_FIELDS
        assert body["app"] == "healthai" and body["owner_id"] == owner_id
        assert (body["operation"], body["amount"], body["nonce"]) == ("CREDIT_ADD", 10, nonce)
        assert body["balance"] == 10
        assert body["created_on"].endswith("Z")
        assert re.fullmatch(r"\d+:\d+", body["position"])
        balance = await client.get(f"/ledger/{owner_id}", params={"min_position": body["position"]})
        assert balance.status_code == 200
        assert balance.json() == {
            "owner_id": owner_id,
            "app": "healthai",
            "balance": 10,
            "last_updated": body["created_on"],
            "position": body["position"],
        }


async def test_the_same_nonce_and_body_answers_200_with_the_identical_body(
    ledger: LedgerStack,
) -> None:
    owner_id, nonce = owner(), uuid.uuid4().hex
    async with ledger.client() as client:
        first = await post_entry(client, owner_id, "SIGNUP_CREDIT", nonce)
        again = await post_entry(client, owner_id, "SIGNUP_CREDIT", nonce)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content


async def test_the_same_nonce_with_another_body_is_409_nonce_reused(ledger: LedgerStack) -> None:
    owner_id, nonce = owner(), uuid.uuid4().hex
    async with ledger.client() as client:
        assert (await post_entry(client, owner_id, "CREDIT_ADD", nonce)).status_code == 201
        other_operation = await post_entry(client, owner_id, "DAILY_REWARD", nonce)
        other_owner = await post_entry(client, owner(), "CREDIT_ADD", nonce)
    for response in (other_operation, other_owner):
        assert response.status_code == 409
        assert response.json()["code"] == "nonce_reused"
        assert set(response.json()) == {"detail", "code"}


async def test_a_nonce_is_unique_within_its_app_only(ledger: LedgerStack) -> None:
    owner_id, nonce = owner(), uuid.uuid4().hex
    async with ledger.client() as healthai, ledger.client(TRAVELAI_KEY) as travelai:
        assert (await post_entry(healthai, owner_id, "CREDIT_ADD", nonce)).status_code == 201
        response = await post_entry(travelai, owner_id, "BOOKING_REWARD", nonce)
        assert response.status_code == 201
        assert response.json()["balance"] == 5
        healthai_balance = (
            await healthai.get(
                f"/ledger/{owner_id}", params={"min_position": response.json()["position"]}
            )
        ).json()
        travelai_balance = (
            await travelai.get(
                f"/ledger/{owner_id}", params={"min_position": response.json()["position"]}
            )
        ).json()
    assert (healthai_balance["balance"], travelai_balance["balance"]) == (10, 5)


async def test_insufficient_balance_is_409_and_a_retry_gets_the_same_409(
    ledger: LedgerStack,
) -> None:
    owner_id, spend_nonce = owner(), uuid.uuid4().hex
    async with ledger.client() as client:
        refused = await post_entry(client, owner_id, "CONTENT_CREATION", spend_nonce)
        assert refused.status_code == 409
        assert refused.json()["code"] == "insufficient_balance"
        assert (
            await post_entry(client, owner_id, "CREDIT_ADD", uuid.uuid4().hex)
        ).status_code == 201
        retried = await post_entry(client, owner_id, "CONTENT_CREATION", spend_nonce)
        assert retried.status_code == 409 and retried.content == refused.content
        fresh = await post_entry(client, owner_id, "CONTENT_CREATION", uuid.uuid4().hex)
        assert fresh.status_code == 201 and fresh.json()["balance"] == 5


async def test_an_operation_outside_the_catalog_is_422_unknown_operation(
    ledger: LedgerStack,
) -> None:
    async with ledger.client() as client:
        for operation in ("BOOKING_REWARD", "credit_add", "NOPE"):
            response = await post_entry(client, owner(), operation, uuid.uuid4().hex)
            assert response.status_code == 422
            assert response.json()["code"] == "unknown_operation"
        missing = await client.post("/ledger/", json={"owner_id": owner(), "nonce": "x"})
        assert missing.status_code == 422 and isinstance(missing.json()["detail"], list)
        extra = await client.post(
            "/ledger/", json={"owner_id": "a", "operation": "CREDIT_ADD", "nonce": "n", "amount": 5}
        )
        assert extra.status_code == 422


async def test_a_bad_or_missing_key_is_401(ledger: LedgerStack) -> None:
    async with ledger.client("not-a-key") as bad, ledger.client(None) as anonymous:
        for client in (bad, anonymous):
            assert (await post_entry(client, owner(), "CREDIT_ADD", "n")).status_code == 401
            assert (await client.get(f"/ledger/{owner()}")).status_code == 401
            assert (await client.get(f"/ledger/{owner()}/entries")).status_code == 401


async def test_an_owner_without_entries_has_balance_zero(ledger: LedgerStack) -> None:
    owner_id = owner()
    async with ledger.client() as client:
        response = await client.get(f"/ledger/{owner_id}")
    assert response.status_code == 200
    assert response.json() == {
        "owner_id": owner_id,
        "app": "healthai",
        "balance": 0,
        "last_updated": None,
        "position": None,
    }


async def test_entries_come_newest_first_and_page_with_before(ledger: LedgerStack) -> None:
    owner_id = owner()
    async with ledger.client() as client:
        created = []
        for operation in ("CREDIT_ADD", "DAILY_REWARD", "SIGNUP_CREDIT", "CREDIT_SPEND"):
            response = await post_entry(client, owner_id, operation, uuid.uuid4().hex)
            assert response.status_code == 201
            created.append(response.json())
        last = created[-1]["position"]
        page = (
            await client.get(
                f"/ledger/{owner_id}/entries", params={"limit": 3, "min_position": last}
            )
        ).json()
        assert [entry["id"] for entry in page["entries"]] == [e["id"] for e in reversed(created)][
            :3
        ]
        assert page["entries"][0] == created[-1]
        rest = (
            await client.get(f"/ledger/{owner_id}/entries", params={"before": page["next_before"]})
        ).json()
        assert [entry["id"] for entry in rest["entries"]] == [created[0]["id"]]
        assert rest["next_before"] is None


async def test_a_position_never_written_is_422_at_once(ledger: LedgerStack) -> None:
    async with ledger.client() as client:
        response = await client.get(f"/ledger/{owner()}", params={"min_position": "0:999999999"})
        assert (response.status_code, response.json()["code"]) == (422, "invalid_position")
        malformed = await client.get(f"/ledger/{owner()}", params={"min_position": "soon"})
        assert malformed.status_code == 422


async def test_fifty_concurrent_spends_on_a_balance_of_ten(ledger: LedgerStack) -> None:
    owner_id = owner()
    async with ledger.client() as client:
        assert (
            await post_entry(client, owner_id, "CREDIT_ADD", uuid.uuid4().hex)
        ).status_code == 201
        responses = await asyncio.gather(
            *(post_entry(client, owner_id, "CREDIT_SPEND", uuid.uuid4().hex) for _ in range(50))
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201] * 10 + [409] * 40
        assert all(
            r.json()["code"] == "insufficient_balance" for r in responses if r.status_code == 409
        )
        last = max(
            (r.json()["position"] for r in responses if r.status_code == 201),
            key=lambda p: int(p.split(":")[1]),
        )
        final = await client.get(f"/ledger/{owner_id}", params={"min_position": last})
        assert final.json()["balance"] == 0
    spends = [
        event
        for event in await _events_of(ledger, owner_id)
        if event["type"] == "ledger.entry_recorded.v1"
        and event["data"]["operation"] == "CREDIT_SPEND"
    ]
    assert len(spends) == 10
    assert len({event["id"] for event in spends}) == 10


async def test_one_nonce_sent_twenty_times_at_once(ledger: LedgerStack) -> None:
    owner_id, nonce = owner(), uuid.uuid4().hex
    async with ledger.client() as client:
        responses = await asyncio.gather(
            *(post_entry(client, owner_id, "CREDIT_ADD", nonce) for _ in range(20))
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] * 19 + [201]
        assert len({response.content for response in responses}) == 1
        position = responses[0].json()["position"]
        entries = (
            await client.get(f"/ledger/{owner_id}/entries", params={"min_position": position})
        ).json()
    assert len(entries["entries"]) == 1
    recorded = [e for e in await _events_of(ledger, owner_id) if e["data"]["nonce"] == nonce]
    assert len({event["id"] for event in recorded}) == 1


async def test_ops_routes_and_documents(ledger: LedgerStack) -> None:
    async with ledger.client(None) as client:
        assert (await client.get("/health")).json()["status"] == "ok"
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert set(checks) == {"postgres", "kafka", "redis", "consumers", "analytics"}
        # No aggregator runs in this stack: nothing answers, and nothing counts against it.
        assert checks["analytics"]["details"]["answering"] is False
        consumers = checks["consumers"]["details"]
        # Every registered group is reported; the ones this stack does not run never ran, so
        # they do not count against readiness.
        running = {name for name, consumer in consumers.items() if consumer["running"]}
        assert running == {"ledger-processor", "ledger-projector"}
        assert {"wallet-processor", "tracking-projector"} <= set(consumers)
        # A consumer of two topics is reported per topic, so neither hides the other.
        assert {
            f"tracking-processor {ledger.topic(topic)}"
            for topic in ("tracking.commands", "tracking.events")
        } <= set(consumers)
        assert all(
            state["owned"] and state["halted"] is None
            for name in running
            for state in consumers[name]["partitions"].values()
        )
        metrics = await client.get("/metrics")
        assert "ledgerbus_http_requests_total" in metrics.text
        for path in ("/docs", "/redoc", "/openapi.json", "/asyncapi", "/asyncapi.json"):
            assert (await client.get(path)).status_code == 200, path
        asyncapi = (await client.get("/asyncapi.json")).json()
        assert {channel["address"] for channel in asyncapi["channels"].values()} == {
            f"{service}.{kind}{suffix}"
            for service in ("ledger", "wallet", "tracking")
            for kind in ("commands", "events")
            for suffix in ("", ".dlq")
        }


async def _events_of(ledger: LedgerStack, owner_id: str) -> list[dict[str, Any]]:
    records = await read_topic(ledger.bootstrap, ledger.topic("ledger.events"))
    events = [orjson.loads(record.value) for record in records]
    return [event for event in events if event["data"]["owner_id"] == owner_id]


async def test_a_cached_balance_is_never_served_after_the_read_model_moved(
    ledger: LedgerStack,
) -> None:
    owner_id = owner()
    async with ledger.client() as client:
        first = await post_entry(client, owner_id, "CREDIT_ADD", uuid.uuid4().hex)
        position = first.json()["position"]
        for _ in range(3):  # fills, then hits, the gateway's balance cache
            cached = await client.get(f"/ledger/{owner_id}", params={"min_position": position})
            assert cached.json()["balance"] == 10
        second = await post_entry(client, owner_id, "DAILY_REWARD", uuid.uuid4().hex)
        after = await client.get(
            f"/ledger/{owner_id}", params={"min_position": second.json()["position"]}
        )
        assert after.json()["balance"] == 11
        assert after.json()["position"] == second.json()["position"]
