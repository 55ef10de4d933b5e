"""Health tracking through HTTP and Kafka, on the real processes (issue 7, ADR 0022):

- entries of each type, by a user's token, an app's key and the seed's route; `meta_data`
  checked per type; reads, lists filtered per entry, cursors, year documents;
- another user's ids answer 404 on every tracking route; Idempotency-Key repeats and reuses;
- 50 entries of one user on one day, over HTTP and Kafka at once: one DAILY_REWARD;
- a command from confluent-kafka with default settings appears through the gateway, and a
  malformed one lands in the DLQ; the audit matches.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from confluent_kafka import Producer

from ledgerbus.registry import GATEWAY_PROCESS
from shared.infra.provision import Infrastructure
from tests.support.commands import ledgerbus
from tests.support.stacks import HEALTHAI_KEY, LedgerStack, publish, read_topic, running_stack
from tests.support.waiting import eventually
from tests.support.wallet_users import OPERATOR, WalletUser, register

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
TRACKING_PROCESSES = (
    "tracking-processor", "tracking-projector", "ledger-processor", "ledger-projector",
    "wallet-processor", "wallet-projector", GATEWAY_PROCESS,
)  # fmt: skip
APP = {"X-Api-Key": HEALTHAI_KEY}
SAME_DAY_ENTRIES = 50
CONFLUENT_FLUSH_TIMEOUT_SECONDS = 15.0
FOOD = {"type": "food", "meta_data": {"food": "Breakfast", "calories": 500}}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tracking(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("tracking") / "stack.log"
    async with running_stack(infrastructure, log_path, TRACKING_PROCESSES) as stack:
        await stack.wait_until_ready()
        yield stack


@pytest_asyncio.fixture(loop_scope="session")
async def client(tracking: LedgerStack) -> AsyncIterator[httpx.AsyncClient]:
    async with tracking.client(None) as http:
        yield http


async def post_entry(
    client: httpx.AsyncClient, user: WalletUser, body: dict[str, Any]
) -> dict[str, Any]:
    answer = await client.post("/tracking/entries", json=body, headers=user.auth)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_entries_of_every_type_are_registered_read_and_listed(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client, "track")
    food = await post_entry(client, user, FOOD)
    assert (food["user_id"], food["type"], food["meta_data"]) == (
        user.user_id, "food", {"food": "Breakfast", "calories": 500}
    )  # fmt: skip
    assert food["date"] == food["created_on"]  # stamped by the server when no date is given
    sleep = await post_entry(
        client, user, {"type": "sleep", "date": "2025-03-01", "meta_data": {"hours": 7.5}}
    )
    assert (sleep["date"], sleep["year"]) == ("2025-03-01T00:00:00Z", 2025)
    by_app = await client.post(
        "/api/track/register", headers=APP,
        json={"type": "workout", "user_id": user.user_id,
              "meta_data": {"exercise_type": "running", "duration_minutes": 30}},
    )  # fmt: skip
    assert by_app.status_code == 201, by_app.text
    meditation = await post_entry(
        client, user, {"type": "meditation", "meta_data": {"duration_minutes": 10}}
    )
    position = meditation["position"]
    read = await client.get(
        f"/tracking/entries/{food['id']}", headers=user.auth, params={"min_position": position}
    )
    assert read.json() | {"position": None} == food | {"position": None}
    alias = await client.get(f"/api/track/{food['id']}", headers=user.auth)
    assert alias.json() == read.json()
    foods = await client.get(
        f"/tracking/users/{user.user_id}/entries", headers=user.auth, params={"type": "food"}
    )
    assert [entry["id"] for entry in foods.json()["entries"]] == [food["id"]]  # per entry
    seed = await client.get(
        f"/api/track/all/user/{user.user_id}", headers=user.auth, params={"type": "sleep"}
    )
    assert [entry["id"] for entry in seed.json()["entries"]] == [sleep["id"]]
    year = await client.get(f"/tracking/users/{user.user_id}/years/2025", headers=user.auth)
    assert (year.json()["year"], year.json()["entries_ids"]) == (2025, [sleep["id"]])
    missing = await client.get(f"/tracking/users/{user.user_id}/years/2024", headers=user.auth)
    assert missing.status_code == 404


async def test_lists_filter_by_day_and_page_with_a_cursor(client: httpx.AsyncClient) -> None:
    user = await register(client, "pages")
    days = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    created = [
        await post_entry(client, user, FOOD | {"date": day}) for day in days
    ]  # fmt: skip
    position = created[-1]["position"]
    params = {"from": "2026-01-02", "to": "2026-01-03", "min_position": position}
    ranged = await client.get(
        f"/tracking/users/{user.user_id}/entries", headers=user.auth, params=params
    )
    assert [e["date"][:10] for e in ranged.json()["entries"]] == ["2026-01-03", "2026-01-02"]
    first = await client.get(
        f"/tracking/users/{user.user_id}/entries", headers=user.auth, params={"limit": 3}
    )
    page = first.json()
    assert len(page["entries"]) == 3 and page["next_before"] == page["entries"][-1]["id"]
    rest = await client.get(
        f"/tracking/users/{user.user_id}/entries", headers=user.auth,
        params={"limit": 3, "before": page["next_before"]},
    )  # fmt: skip
    assert [e["date"][:10] for e in rest.json()["entries"]] == ["2026-01-01"]
    backwards = await client.get(
        f"/tracking/users/{user.user_id}/entries", headers=user.auth,
        params={"from": "2026-01-03", "to": "2026-01-01"},
    )  # fmt: skip
    assert (backwards.status_code, backwards.json()["code"]) == (422, "invalid_range")


@pytest.mark.parametrize(
    "body",
    [
        {"type": "food", "meta_data": {"food": "x"}},
        {"type": "food", "meta_data": {"food": "x", "calories": -1}},
        {"type": "food", "meta_data": {"food": "x", "calories": 1, "sugar": 2}},
        {"type": "sleep", "meta_data": {"hours": 25}},
        {"type": "workout", "meta_data": {"duration_minutes": 30}},
        {"type": "meditation", "meta_data": {"duration_minutes": 0}},
        {"type": "meditation", "meta_data": {"duration_minutes": True}},
        {"type": "yoga", "meta_data": {}},
        {"type": "food", "meta_data": {"food": "a\u202eb", "calories": 1}},
        {"type": "food", "meta_data": {"food": "x", "calories": 1}, "date": "2026-11-20T10:00"},
        {"type": "food", "meta_data": {"food": "x", "calories": 1}, "date": 1_700_000_000},
        {"type": "food", "meta_data": {"food": "x", "calories": 1}, "date": "1700000000"},
        {"type": "food", "meta_data": {"food": "x", "calories": 1}, "date": "20261120"},
        {"type": "sleep", "meta_data": {"hours": "7"}},
        {"type": "meditation", "meta_data": {"duration_minutes": "30"}},
        {"type": "sleep", "meta_data": {"hours": 1}, "date": "9999-12-31T23:59:59-01:00"},
    ],
)
async def test_meta_data_is_checked_per_type(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    user = await register(client, "meta")
    answer = await client.post("/tracking/entries", json=body, headers=user.auth)
    assert answer.status_code == 422, answer.text


async def test_another_users_ids_answer_404_and_apps_name_the_user(
    client: httpx.AsyncClient,
) -> None:
    alice, bob = await register(client, "own-a"), await register(client, "own-b")
    entry = await post_entry(client, alice, FOOD)
    routes = [
        f"/tracking/entries/{entry['id']}", f"/api/track/{entry['id']}",
        f"/tracking/users/{alice.user_id}/entries", f"/api/track/all/user/{alice.user_id}",
        f"/tracking/users/{alice.user_id}/years/{entry['year']}",
    ]  # fmt: skip
    for route in routes:
        answer = await client.get(route, headers=bob.auth)
        assert answer.status_code == 404, route
        operator = await client.get(
            route, headers=OPERATOR, params={"min_position": entry["position"]}
        )
        assert operator.status_code == 200, route
    for_alice = await client.post(
        "/tracking/entries", headers=bob.auth, json=FOOD | {"user_id": alice.user_id}
    )
    assert for_alice.status_code == 404
    nameless = await client.post("/tracking/entries", headers=APP, json=FOOD)
    assert (nameless.status_code, nameless.json()["code"]) == (422, "user_id_required")
    travel = await client.post(  # another app's key must not mint HealthAI's daily reward
        "/tracking/entries", headers={"X-Api-Key": "dev-travelai-key"},
        json=FOOD | {"user_id": alice.user_id},
    )  # fmt: skip
    assert (travel.status_code, travel.json()["code"]) == (403, "app_not_allowed")
    assert (await client.post("/tracking/entries", json=FOOD)).status_code == 401


async def test_an_idempotency_key_answers_the_first_entry_and_refuses_another_body(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client, "idem")
    headers = user.auth | {"Idempotency-Key": "breakfast-23"}
    first = await client.post("/tracking/entries", json=FOOD, headers=headers)
    again = await client.post("/tracking/entries", json=FOOD, headers=headers)
    assert (first.status_code, again.content) == (201, first.content)
    other = FOOD | {"meta_data": {"food": "Lunch", "calories": 700}}
    reused = await client.post("/tracking/entries", json=other, headers=headers)
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    dated = user.auth | {"Idempotency-Key": "dated"}
    first_dated = await client.post(
        "/tracking/entries", json=FOOD | {"date": "2026-01-05"}, headers=dated
    )
    undated = await client.post("/tracking/entries", json=FOOD, headers=dated)
    assert (first_dated.status_code, undated.status_code) == (201, 409)
    other_user = await register(client, "idem-other")
    app_key = APP | {"Idempotency-Key": "app-key-1"}
    for_user = await client.post(
        "/tracking/entries", headers=app_key, json=FOOD | {"user_id": user.user_id}
    )
    for_other = await client.post(
        "/tracking/entries", headers=app_key, json=FOOD | {"user_id": other_user.user_id}
    )
    assert (for_user.status_code, for_other.status_code) == (201, 409)  # one key, one entry


async def test_a_commands_answer_is_read_by_its_user_the_operator_and_the_app(
    tracking: LedgerStack, client: httpx.AsyncClient
) -> None:
    """A 504 names `GET /tracking/commands/{id}`; the route exists (found by review)."""
    alice, bob = await register(client, "answers-a"), await register(client, "answers-b")
    value = register_command(alice.user_id)
    command_id = orjson.loads(value)["id"]
    await publish(
        tracking.bootstrap, tracking.topic("tracking.commands"), [(alice.user_id.encode(), value)]
    )
    answer = await eventually(
        lambda: client.get(
            f"/tracking/commands/{command_id}", headers=alice.auth,
            params={"source": "tests/device"},
        ),
        lambda response: response.status_code != 202, "the command's answer", 30,
    )  # fmt: skip
    assert (answer.status_code, answer.json()["user_id"]) == (201, alice.user_id)
    for headers, status in ((bob.auth, 202), (OPERATOR, 201), (APP, 201)):
        seen = await client.get(
            f"/commands/tracking/{command_id}", headers=headers, params={"source": "tests/device"}
        )
        assert seen.status_code == status, headers


async def reward_entries(tracking: LedgerStack, owner_id: str) -> list[dict[str, Any]]:
    records = await read_topic(tracking.bootstrap, tracking.topic("ledger.events"))
    events = [orjson.loads(record.value or b"{}") for record in records]
    return [
        event for event in events
        if event.get("data", {}).get("owner_id") == owner_id
        and event["data"]["operation"] == "DAILY_REWARD"
    ]  # fmt: skip


def register_command(user_id: str, **data: Any) -> bytes:
    return orjson.dumps(
        {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "tests/device",
         "type": "tracking.register_entry.v1", "subject": user_id,
         "data": {"user_id": user_id, **FOOD, **data}}
    )  # fmt: skip


async def test_fifty_entries_on_one_day_over_http_and_kafka_earn_one_reward(
    tracking: LedgerStack, client: httpx.AsyncClient
) -> None:
    user = await register(client, "reward")
    half = SAME_DAY_ENTRIES // 2
    topic = tracking.topic("tracking.commands")
    records = [(user.user_id.encode(), register_command(user.user_id)) for _ in range(half)]
    answers, _ = await asyncio.gather(
        asyncio.gather(
            *(client.post("/tracking/entries", json=FOOD, headers=user.auth) for _ in range(half))
        ),
        publish(tracking.bootstrap, topic, records),
    )
    assert {answer.status_code for answer in answers} == {201}
    listed = await eventually(
        lambda: client.get(
            f"/tracking/users/{user.user_id}/entries", headers=user.auth, params={"limit": 100}
        ),
        lambda response: len(response.json()["entries"]) == SAME_DAY_ENTRIES,
        "every entry listed", 30,
    )  # fmt: skip
    assert len({entry["id"] for entry in listed.json()["entries"]}) == SAME_DAY_ENTRIES
    balance = await eventually(
        lambda: client.get(f"/ledger/{user.user_id}", headers=APP),
        lambda response: response.json()["balance"] >= 1, "the daily reward", 30,
    )  # fmt: skip
    assert balance.json()["balance"] == 1
    assert len(await reward_entries(tracking, user.user_id)) == 1


def produce_with_default_librdkafka(bootstrap: str, topic: str, items: list[bytes]) -> None:
    """A plain confluent-kafka producer: CRC32 partitioning, no key, no other setting."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in items:
        producer.produce(topic, value=value)
    assert producer.flush(CONFLUENT_FLUSH_TIMEOUT_SECONDS) == 0


async def test_a_device_on_confluent_kafka_is_heard_and_a_malformed_record_dead_lettered(
    tracking: LedgerStack, client: httpx.AsyncClient
) -> None:
    user = await register(client, "device")
    good = register_command(user.user_id, meta_data={"food": "Dinner", "calories": 800})
    bad = register_command(user.user_id, meta_data={"food": "Dinner"})  # calories missing
    await asyncio.to_thread(
        produce_with_default_librdkafka, tracking.bootstrap,
        tracking.topic("tracking.commands"), [good, bad],
    )  # fmt: skip
    listed = await eventually(
        lambda: client.get(f"/tracking/users/{user.user_id}/entries", headers=user.auth),
        lambda response: len(response.json()["entries"]) == 1, "the device's entry", 30,
    )  # fmt: skip
    assert listed.json()["entries"][0]["meta_data"] == {"food": "Dinner", "calories": 800}
    bad_id = orjson.loads(bad)["id"]

    async def dead_letters() -> list[Any]:
        return await read_topic(tracking.bootstrap, tracking.topic("tracking.commands.dlq"))

    letters = await eventually(
        dead_letters,
        lambda found: any(bad_id.encode() in (record.value or b"") for record in found),
        "the malformed record in the DLQ", 30,
    )  # fmt: skip
    letter = next(record for record in letters if bad_id.encode() in (record.value or b""))
    assert dict(letter.headers)["error_code"] == b"invalid_data"
    result = await ledgerbus(tracking.environment, "audit", "--service", "tracking")
    assert result.exit_code == 0, result.output[-3000:]
