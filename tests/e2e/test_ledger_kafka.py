"""Outside producers on `ledger.commands`: any client's defaults work like HTTP, and each kind of
bad record goes to the DLQ with its reason and coordinates while the partition flows on."""

import asyncio
import functools
import uuid
from collections.abc import Sequence

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.structs import RecordMetadata
from confluent_kafka import Producer

from shared.contracts.registry import RECORD_VALUE_MAX_BYTES
from shared.engine.dead_letters import DEAD_LETTER_VALUE_MAX_BYTES
from shared.engine.messages import FORWARD_HOPS_HEADER, FORWARDED_FROM_HEADER
from shared.kafka.producer import partition_for
from tests.support.stacks import LedgerStack, read_topic, record_entry_command
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
CONFLUENT_FLUSH_TIMEOUT_SECONDS = 15.0
PRODUCER_MAX_REQUEST_BYTES = 4 * 1024 * 1024
OVERSIZED_VALUE_BYTES = 600 * 1024


def owner(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


async def reply_of(client: httpx.AsyncClient, value: bytes) -> httpx.Response:
    return await client.get(f"/ledger/commands/{orjson.loads(value)['id']}")


def produce_with_default_librdkafka(
    bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]
) -> None:
    """A plain `Producer({"bootstrap.servers": ...})`: CRC32 partitioning, no other setting."""
    producer = Producer({"bootstrap.servers": bootstrap})
    delivered: list[object] = []
    for key, value in items:
        producer.produce(topic, key=key, value=value, on_delivery=lambda e, _: delivered.append(e))
    assert producer.flush(CONFLUENT_FLUSH_TIMEOUT_SECONDS) == 0
    assert delivered == [None] * len(items)


async def send(
    ledger: LedgerStack, items: Sequence[tuple[bytes | None, bytes]], partition: int | None = None
) -> list[RecordMetadata]:
    producer = AIOKafkaProducer(
        bootstrap_servers=ledger.bootstrap, acks="all", max_request_size=PRODUCER_MAX_REQUEST_BYTES
    )
    await producer.start()
    try:
        topic = ledger.topic("ledger.commands")
        return [
            await producer.send_and_wait(topic, value, key=key, partition=partition)
            for key, value in items
        ]
    finally:
        await producer.stop()


async def test_a_default_confluent_producer_has_the_same_effect_as_http(
    ledger: LedgerStack,
) -> None:
    via_kafka, via_http = owner("kafka"), owner("http")
    key, value = record_entry_command("healthai", via_kafka, "CREDIT_ADD", uuid.uuid4().hex)
    await asyncio.to_thread(
        produce_with_default_librdkafka, ledger.bootstrap, ledger.topic("ledger.commands"),
        [(key, value)],
    )  # fmt: skip
    async with ledger.client() as client:
        response = await client.post(
            "/ledger/",
            json={"owner_id": via_http, "operation": "CREDIT_ADD", "nonce": uuid.uuid4().hex},
        )
        assert response.status_code == 201
        answer = await eventually(
            lambda: reply_of(client, value), lambda r: r.status_code == 201, "the Kafka answer"
        )
        assert (answer.json()["balance"], answer.json()["owner_id"]) == (10, via_kafka)
        positions = f"{answer.json()['position']},{response.json()['position']}"
        for someone in (via_kafka, via_http):
            read = await client.get(f"/ledger/{someone}", params={"min_position": positions})
            assert read.json()["balance"] == 10


async def test_a_cloudevent_with_extensions_and_no_time_is_decided(ledger: LedgerStack) -> None:
    """Reproduces valid CloudEvents dead-lettered as `not_a_cloudevent`: SDKs add `traceparent`
    and may leave the optional `time` out or state a charset."""
    key, value = record_entry_command("healthai", owner("ext"), "CREDIT_ADD", uuid.uuid4().hex)
    envelope = orjson.loads(value)
    del envelope["time"]
    envelope["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    envelope["datacontenttype"] = "application/json; charset=utf-8"
    extended = orjson.dumps(envelope)
    await send(ledger, [(key, extended)])
    async with ledger.client() as client:
        answer = await eventually(
            lambda: reply_of(client, extended), lambda r: r.status_code != 202, "the answer"
        )
    assert (answer.status_code, answer.json()["balance"]) == (201, 10)


def letters_of(
    dead: list[ConsumerRecord[bytes, bytes]], marker: bytes
) -> list[ConsumerRecord[bytes, bytes]]:
    return [letter for letter in dead if marker in (letter.value or b"")]


async def test_each_bad_record_goes_to_the_dlq_with_its_reason_and_position(
    ledger: LedgerStack,
) -> None:
    owner_id = owner("dlq")
    key = f"healthai:{owner_id}".encode()
    marker = uuid.uuid4().hex
    _, good = record_entry_command("healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    _, unknown_operation = record_entry_command("healthai", owner_id, "NOPE", f"{marker}-op")
    invalid = orjson.loads(good) | {"id": f"{marker}-invalid"}
    invalid["data"] = invalid["data"] | {"owner_id": "a\u202eb"}
    unknown_type = orjson.loads(good) | {"type": "ledger.nope.v1", "id": f"{marker}-type"}
    bad = {
        "invalid_json": b"{not json " + marker.encode(),
        "not_a_cloudevent": orjson.dumps({"hello": marker}),
        "unknown_type": orjson.dumps(unknown_type),
        "invalid_data": orjson.dumps(invalid),
        "record_too_large": marker.encode() + b" " * (RECORD_VALUE_MAX_BYTES + 1),
        "unknown_operation": unknown_operation,
    }
    written = await send(ledger, [(key, value) for value in bad.values()] + [(key, good)])
    empty = await send(ledger, [(key, b"")])
    async with ledger.client() as client:
        answer = await eventually(
            lambda: reply_of(client, good), lambda r: r.status_code == 201, "the good command"
        )
        assert answer.json()["balance"] == 10
        for value, code in ((unknown_type, "unknown_type"), (invalid, "invalid_data")):
            stored = await reply_of(client, orjson.dumps(value))
            assert (stored.status_code, stored.json()["code"]) == (422, code)
        stored = await reply_of(client, unknown_operation)
        assert (stored.status_code, stored.json()["code"]) == (422, "unknown_operation")
    dead = await eventually(
        lambda: read_topic(ledger.bootstrap, ledger.topic("ledger.commands.dlq")),
        lambda records: len([r for r in records if r.key == key]) >= len(bad) + 1,
        "the dead letters",
    )
    mine = [record for record in dead if record.key == key]
    assert [dict(r.headers)["error_code"].decode() for r in mine] == [*bad, "empty_record"]
    for letter, metadata in zip(mine, [*written[: len(bad)], *empty], strict=True):
        headers = dict(letter.headers)
        assert headers["original_topic"] == ledger.topic("ledger.commands").encode()
        assert headers["original_partition"] == str(metadata.partition).encode()
        assert headers["original_offset"] == str(metadata.offset).encode()
        assert headers["error_message"]
    assert [letter.value for letter in mine[: len(bad)]] == list(bad.values())


async def test_a_command_for_an_app_without_a_catalog_is_dead_lettered(
    ledger: LedgerStack,
) -> None:
    owner_id = owner("noapp")
    key, value = record_entry_command("nope", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    await send(ledger, [(key, value)])
    dead = await eventually(
        lambda: read_topic(ledger.bootstrap, ledger.topic("ledger.commands.dlq")),
        lambda records: any(record.value == value for record in records),
        "the unknown app's dead letter",
    )
    letter = next(record for record in dead if record.value == value)
    assert dict(letter.headers)["error_code"] == b"unknown_app"


async def test_a_command_on_the_wrong_partition_is_forwarded_and_decided(
    ledger: LedgerStack,
) -> None:
    owner_id = owner("misrouted")
    key, value = record_entry_command("healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    right = partition_for(key, ledger.partitions_of("ledger.commands"))
    wrong = (right + 1) % ledger.partitions_of("ledger.commands")
    await send(ledger, [(key, value)], partition=wrong)
    async with ledger.client() as client:
        answer = await eventually(
            lambda: reply_of(client, value), lambda r: r.status_code == 201, "the answer"
        )
        assert answer.json()["balance"] == 10
    commands = await read_topic(ledger.bootstrap, ledger.topic("ledger.commands"))
    copies = [record for record in commands if record.value == value]
    forwarded = [r for r in copies if FORWARDED_FROM_HEADER in dict(r.headers)]
    original = [r for r in copies if FORWARDED_FROM_HEADER not in dict(r.headers)]
    assert [r.partition for r in original] == [wrong]
    assert [r.partition for r in forwarded] == [right]
    assert dict(forwarded[0].headers)[FORWARDED_FROM_HEADER] == (
        f"{ledger.topic('ledger.commands')}:{wrong}:{original[0].offset}".encode()
    )


async def test_a_command_keyed_otherwise_or_not_at_all_is_decided_for_its_owner(
    ledger: LedgerStack,
) -> None:
    owner_id = owner("rekeyed")
    _, mis_keyed = record_entry_command("healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    _, keyless = record_entry_command("healthai", owner_id, "DAILY_REWARD", uuid.uuid4().hex)
    await send(ledger, [(b"some-other-key", mis_keyed), (None, keyless)], partition=0)
    async with ledger.client() as client:
        positions = []
        for value in (mis_keyed, keyless):
            answer = await eventually(
                functools.partial(reply_of, client, value),
                lambda r: r.status_code == 201,
                "the answer",
            )
            positions.append(answer.json()["position"])
        read = await client.get(f"/ledger/{owner_id}", params={"min_position": ",".join(positions)})
        assert read.json()["balance"] == 11


async def test_a_keyless_unreadable_record_is_dead_lettered_on_its_partition(
    ledger: LedgerStack,
) -> None:
    marker = uuid.uuid4().hex.encode()
    await send(ledger, [(None, b"{keyless " + marker)], partition=1)
    dead = await eventually(
        lambda: read_topic(ledger.bootstrap, ledger.topic("ledger.commands.dlq")),
        lambda records: any(marker in (record.value or b"") for record in records),
        "the keyless record's dead letter",
    )
    letter = next(record for record in dead if marker in (record.value or b""))
    assert letter.key is None
    assert dict(letter.headers)["error_code"] == b"invalid_json"
    assert dict(letter.headers)["original_partition"] == b"1"


async def test_an_oversized_record_is_dead_lettered_truncated_and_the_partition_flows(
    ledger: LedgerStack,
) -> None:
    owner_id = owner("huge")
    key = f"healthai:{owner_id}".encode()
    marker = uuid.uuid4().hex.encode()
    huge = marker + b"x" * OVERSIZED_VALUE_BYTES
    _, good = record_entry_command("healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    await send(ledger, [(key, huge), (key, good)])
    async with ledger.client() as client:
        await eventually(
            lambda: reply_of(client, good), lambda r: r.status_code == 201, "the next command"
        )
    dead = await read_topic(ledger.bootstrap, ledger.topic("ledger.commands.dlq"))
    letter = next(record for record in dead if (record.value or b"").startswith(marker))
    headers = dict(letter.headers)
    assert headers["error_code"] == b"record_too_large"
    assert headers["ledgerbus-truncated"] == b"true"
    assert headers["original_size"] == str(len(huge)).encode()
    assert letter.value == huge[:DEAD_LETTER_VALUE_MAX_BYTES]


async def test_commands_are_deduplicated_by_source_and_id(ledger: LedgerStack) -> None:
    owner_id = owner("dedupe")
    command_id = uuid.uuid4().hex
    key, first = record_entry_command("healthai", owner_id, "CREDIT_ADD", "n-1", command_id)
    _, same_identity = record_entry_command("healthai", owner_id, "CREDIT_ADD", "n-2", command_id)
    other_source = orjson.loads(same_identity) | {"source": "tests/another-producer"}
    await send(ledger, [(key, first), (key, first), (key, same_identity)])
    await send(ledger, [(key, orjson.dumps(other_source))])
    async with ledger.client() as client:
        both = await eventually(
            lambda: client.get(f"/ledger/{owner_id}/entries"),
            lambda r: len(r.json()["entries"]) == 2,
            "the two distinct commands",
        )
        assert sorted(entry["nonce"] for entry in both.json()["entries"]) == ["n-1", "n-2"]
        ambiguous = await client.get(f"/ledger/commands/{command_id}")
        assert (ambiguous.status_code, ambiguous.json()["code"]) == (409, "ambiguous_command_id")
        chosen = await client.get(
            f"/ledger/commands/{command_id}", params={"source": "tests/another-producer"}
        )
        assert (chosen.status_code, chosen.json()["nonce"]) == (201, "n-2")


async def test_a_command_forwarded_too_often_is_refused_with_an_answer_and_the_partition_flows(
    ledger: LedgerStack,
) -> None:
    """Reproduces a halt: the refusal's answer once read the typed command as a dict."""
    owner_id = owner("hops")
    key, bounced = record_entry_command("healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    _, good = record_entry_command("healthai", owner_id, "DAILY_REWARD", uuid.uuid4().hex)
    right = partition_for(key, ledger.partitions_of("ledger.commands"))
    wrong = (right + 1) % ledger.partitions_of("ledger.commands")
    producer = AIOKafkaProducer(bootstrap_servers=ledger.bootstrap, acks="all")
    await producer.start()
    try:
        topic = ledger.topic("ledger.commands")
        hops = [(FORWARD_HOPS_HEADER, b"junk")]
        await producer.send_and_wait(topic, bounced, key=key, partition=wrong, headers=hops)
        await producer.send_and_wait(topic, good, key=b"other", partition=wrong)
    finally:
        await producer.stop()
    async with ledger.client() as client:
        refused = await eventually(
            lambda: reply_of(client, bounced), lambda r: r.status_code == 422, "the refusal"
        )
        assert refused.json()["code"] == "misrouted"
        decided = await eventually(
            lambda: reply_of(client, good), lambda r: r.status_code == 201, "the next command"
        )
        assert decided.json()["balance"] == 1
        assert (await client.get("/ready")).status_code == 200


async def test_a_resent_copy_of_a_decided_command_landing_elsewhere_changes_nothing(
    ledger: LedgerStack,
) -> None:
    owner_id = owner("resent")
    key, value = record_entry_command("healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    await send(ledger, [(key, value)])
    async with ledger.client() as client:
        first = await eventually(
            lambda: reply_of(client, value), lambda r: r.status_code == 201, "the answer"
        )
        right = partition_for(key, ledger.partitions_of("ledger.commands"))
        wrong = (right + 1) % ledger.partitions_of("ledger.commands")
        await send(ledger, [(key, value)], partition=wrong)
        _, marker = record_entry_command("healthai", owner_id, "DAILY_REWARD", uuid.uuid4().hex)
        await send(ledger, [(b"x", marker)], partition=wrong)  # decided after the re-sent copy
        await eventually(
            lambda: reply_of(client, marker), lambda r: r.status_code == 201, "the marker"
        )
        assert (await reply_of(client, value)).content == first.content
    commands = await read_topic(ledger.bootstrap, ledger.topic("ledger.commands"))
    assert len([record for record in commands if record.value == value]) == 2  # not forwarded


async def test_a_corrected_resend_of_a_refused_command_is_decided(ledger: LedgerStack) -> None:
    owner_id = owner("corrected")
    command_id = uuid.uuid4().hex
    key, value = record_entry_command("healthai", owner_id, "CREDIT_ADD", "n", command_id)
    broken = orjson.loads(value)
    broken["data"]["nonce"] = "bad\u0000nonce"
    await send(ledger, [(key, orjson.dumps(broken))])
    async with ledger.client() as client:
        refused = await eventually(
            lambda: reply_of(client, value), lambda r: r.status_code == 422, "the refusal"
        )
        assert refused.json()["code"] == "invalid_data"
        await send(ledger, [(key, value)])
        decided = await eventually(
            lambda: reply_of(client, value), lambda r: r.status_code == 201, "the decision"
        )
    assert decided.json()["nonce"] == "n"


def produce_with_a_null_header(
    bootstrap: str, topic: str, items: list[tuple[bytes, bytes]], partition: int
) -> None:
    """confluent-kafka sends `("trace", None)` as a header with a null value, as Kafka allows."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in items:
        producer.produce(
            topic, key=key, value=value, partition=partition, headers=[("trace", None)]
        )
    assert producer.flush(CONFLUENT_FLUSH_TIMEOUT_SECONDS) == 0


async def test_records_with_a_null_header_are_forwarded_or_dead_lettered_and_keep_it(
    ledger: LedgerStack,
) -> None:
    """Reproduces a halt: a null header value broke the outbox and the dead letter."""
    owner_id = owner("nullheader")
    key, forwarded = record_entry_command("healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    right = partition_for(key, ledger.partitions_of("ledger.commands"))
    wrong = (right + 1) % ledger.partitions_of("ledger.commands")
    malformed = orjson.loads(forwarded) | {"id": uuid.uuid4().hex}
    del malformed["data"]["nonce"]
    _, after = record_entry_command("healthai", owner("after"), "CREDIT_ADD", uuid.uuid4().hex)
    await asyncio.to_thread(
        produce_with_a_null_header, ledger.bootstrap, ledger.topic("ledger.commands"),
        [(key, forwarded), (key, orjson.dumps(malformed)), (b"x", after)], wrong,
    )  # fmt: skip
    async with ledger.client() as client:
        for value in (forwarded, after):
            await eventually(
                functools.partial(reply_of, client, value),
                lambda r: r.status_code == 201,
                "the answer",
            )
        assert (await client.get("/ready")).status_code == 200
    dead = await read_topic(ledger.bootstrap, ledger.topic("ledger.commands.dlq"))
    # Other tests' letters share the topic, some of them not JSON at all.
    (letter,) = letters_of(dead, malformed["id"].encode())
    assert ("trace", None) in list(letter.headers)
    assert dict(letter.headers)["error_code"] == b"invalid_data"
