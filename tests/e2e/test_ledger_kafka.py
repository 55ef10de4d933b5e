"""Outside producers on `ledger.commands`: the same effect as HTTP, and bad records to the DLQ."""

import asyncio
import uuid

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer

from shared.kafka.producer import partition_for
from tests.support.stacks import LedgerStack, publish, read_topic, record_entry_command
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
CONFLUENT_FLUSH_TIMEOUT_SECONDS = 15.0


async def balance_of(client: httpx.AsyncClient, owner_id: str) -> int:
    response = await client.get(f"/ledger/{owner_id}")
    return int(response.json()["balance"])


async def entries_of(client: httpx.AsyncClient, owner_id: str) -> list[dict[str, object]]:
    response = await client.get(f"/ledger/{owner_id}/entries")
    return list(response.json()["entries"])


def produce_with_librdkafka(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    # librdkafka hashes keys with CRC32 by default; murmur2 is what the Java client, aiokafka and
    # the partition owners use, so outside producers must ask for it.
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "partitioner": "murmur2_random"}
    )
    delivered: list[object] = []
    producer.produce(
        topic, key=key, value=value, on_delivery=lambda error, _: delivered.append(error)
    )
    assert producer.flush(CONFLUENT_FLUSH_TIMEOUT_SECONDS) == 0
    assert delivered == [None]


async def test_a_command_from_confluent_kafka_has_the_same_effect_as_http(
    ledger: LedgerStack,
) -> None:
    via_kafka, via_http = f"kafka-{uuid.uuid4().hex[:8]}", f"http-{uuid.uuid4().hex[:8]}"
    key, value = record_entry_command("healthai", via_kafka, "CREDIT_ADD", uuid.uuid4().hex)
    await asyncio.to_thread(
        produce_with_librdkafka, ledger.bootstrap, ledger.topic("ledger.commands"), key, value
    )
    async with ledger.client() as client:
        response = await client.post(
            "/ledger/",
            json={"owner_id": via_http, "operation": "CREDIT_ADD", "nonce": uuid.uuid4().hex},
        )
        assert response.status_code == 201
        await eventually(
            lambda: balance_of(client, via_kafka), lambda b: b == 10, "the Kafka command"
        )
        kafka_entries = await entries_of(client, via_kafka)
        http_entries = await eventually(
            lambda: entries_of(client, via_http), bool, "the HTTP entry"
        )
    comparable = ("app", "operation", "amount", "balance")
    assert [{k: e[k] for k in comparable} for e in kafka_entries] == [
        {k: e[k] for k in comparable} for e in http_entries
    ]
    stored = await ledger.fetch(
        "SELECT status FROM ledger.command_outcomes WHERE command_id = $1",
        orjson.loads(value)["id"],
    )
    assert [row["status"] for row in stored] == [201]


async def test_bad_records_go_to_the_dlq_with_a_reason_and_the_partition_flows(
    ledger: LedgerStack,
) -> None:
    owner_id = f"dlq-{uuid.uuid4().hex[:8]}"
    key = f"healthai:{owner_id}".encode()
    good_key, good_value = record_entry_command(
        "healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex
    )
    _, unknown_operation = record_entry_command("healthai", owner_id, "BOOKING_REWARD", "n-unknown")
    _, wrong_key = record_entry_command("healthai", "someone-else", "CREDIT_ADD", "n-wrong-key")
    not_a_cloudevent = orjson.dumps({"hello": "world"})
    unknown_type = orjson.loads(good_value) | {"type": "ledger.nope.v1", "id": uuid.uuid4().hex}
    bad_records = [
        (key, b"{not json"),
        (key, not_a_cloudevent),
        (key, orjson.dumps(unknown_type)),
        (key, unknown_operation),
        (key, wrong_key),
    ]
    await publish(
        ledger.bootstrap, ledger.topic("ledger.commands"), [*bad_records, (good_key, good_value)]
    )
    async with ledger.client() as client:
        await eventually(
            lambda: balance_of(client, owner_id), lambda b: b == 10, "the good command"
        )
    dead = await eventually(
        lambda: read_topic(ledger.bootstrap, ledger.topic("ledger.commands.dlq")),
        lambda records: len([r for r in records if r.key == key]) >= len(bad_records),
        "the dead letters",
    )
    mine = [record for record in dead if record.key == key]
    codes = [dict(record.headers)["error_code"].decode() for record in mine]
    assert codes == [
        "invalid_json",
        "not_a_cloudevent",
        "unknown_type",
        "unknown_operation",
        "key_mismatch",
    ]
    assert [record.value for record in mine] == [value for _, value in bad_records]
    assert all(dict(record.headers)["error_message"] for record in mine)


async def test_a_command_on_the_wrong_partition_is_refused_not_decided(ledger: LedgerStack) -> None:
    owner_id = f"misrouted-{uuid.uuid4().hex[:8]}"
    key, value = record_entry_command("healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    wrong = (partition_for(key, 4) + 1) % 4
    producer = AIOKafkaProducer(bootstrap_servers=ledger.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            ledger.topic("ledger.commands"), value, key=key, partition=wrong
        )
    finally:
        await producer.stop()
    dead = await eventually(
        lambda: read_topic(ledger.bootstrap, ledger.topic("ledger.commands.dlq")),
        lambda records: any(record.key == key for record in records),
        "the misrouted command's dead letter",
    )
    letter = next(record for record in dead if record.key == key)
    assert dict(letter.headers)["error_code"] == b"wrong_partition"
    assert b"murmur2" in dict(letter.headers)["error_message"]
    async with ledger.client() as client:
        assert await balance_of(client, owner_id) == 0


async def test_a_record_without_a_key_is_dead_lettered_too(ledger: LedgerStack) -> None:
    marker = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=ledger.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            ledger.topic("ledger.commands"), b"{keyless " + marker, partition=1
        )
    finally:
        await producer.stop()
    dead = await eventually(
        lambda: read_topic(ledger.bootstrap, ledger.topic("ledger.commands.dlq")),
        lambda records: any(marker in (record.value or b"") for record in records),
        "the keyless record's dead letter",
    )
    letter = next(record for record in dead if marker in (record.value or b""))
    assert letter.key is None
    assert dict(letter.headers)["error_code"] == b"invalid_json"
    assert dict(letter.headers)["original_partition"] == b"1"
