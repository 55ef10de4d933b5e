"""The partition owner on real PostgreSQL and a real broker: fencing, order and leftovers."""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer, TopicPartition

from ledgerbus.operations import migrate_all
from shared.infra.provision import Infrastructure
from shared.kafka.log_end import LogEndProbe
from shared.kafka.partition_handler import HaltError, HandlerResult, PartitionBatch
from shared.kafka.partition_owner import PartitionOwner
from shared.kafka.producer import OutgoingMessage, PublishedMessage, create_producer
from shared.kafka.topics import TopicDefinition, create_topics
from shared.postgres.pool import create_pool
from tests.support.records import DrivenConsumer, consumer_record
from tests.support.stacks import create_database, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@dataclass
class Harness:
    dsn: str
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    probe: LogEndProbe
    source: str
    sink: str


class RowWriter:
    """Writes one row per record and emits one message per record; can be told to fail."""

    def __init__(
        self, sink: str, fail_offsets: frozenset[int] = frozenset(), halt: bool = False
    ) -> None:
        self.sink = sink
        self.fail_offsets = fail_offsets
        self.halt = halt
        self.published: list[PublishedMessage] = []

    async def handle(self, connection: asyncpg.Connection, batch: PartitionBatch) -> HandlerResult:
        if self.halt:
            raise HaltError("the read model contradicts the log")
        offsets = [record.offset for record in batch.records]
        if self.fail_offsets & set(offsets):
            raise ValueError(f"cannot handle {sorted(self.fail_offsets & set(offsets))}")
        await connection.execute(
            "INSERT INTO ledger.probe_rows SELECT unnest($1::bigint[])", offsets
        )
        messages = [OutgoingMessage(self.sink, b"k", str(offset).encode()) for offset in offsets]
        return HandlerResult(messages=messages)

    async def after_publish(
        self, connection: asyncpg.Connection, published: Sequence[PublishedMessage], context: Any
    ) -> None:
        self.published.extend(published)


@pytest_asyncio.fixture(loop_scope="session")
async def harness(infrastructure: Infrastructure) -> AsyncIterator[Harness]:
    dsn = await create_database(infrastructure.database_url)
    await migrate_all(dsn)
    prefix = f"owner-{uuid.uuid4().hex[:8]}"
    source, sink = f"{prefix}.source", f"{prefix}.sink"
    await create_topics(
        infrastructure.kafka_bootstrap_servers,
        [
            TopicDefinition(source, 1, 1),
            TopicDefinition(sink, 1, 1),
            TopicDefinition(f"{source}.dlq", 1, 1),
        ],
    )
    pool = await create_pool(dsn)
    await pool.execute("CREATE TABLE ledger.probe_rows (record_offset bigint PRIMARY KEY)")
    producer = create_producer(infrastructure.kafka_bootstrap_servers, client_id="tests")
    probe = LogEndProbe(infrastructure.kafka_bootstrap_servers, client_id="tests")
    await producer.start()
    await probe.start()
    yield Harness(dsn, pool, producer, probe, source, sink)
    await probe.stop()
    await producer.stop()
    await pool.close()


def owner(
    harness: Harness, handler: RowWriter, fatal: list[BaseException] | None = None
) -> PartitionOwner:
    return PartitionOwner(
        consumer_name="probe",
        schema="ledger",
        pool=harness.pool,
        producer=harness.producer,
        handler=handler,
        on_fatal=(fatal if fatal is not None else []).append,
        log_end=harness.probe,
    )


def records(harness: Harness, offsets: range) -> list[Any]:
    return [consumer_record(harness.source, 0, offset, b"k", b"v") for offset in offsets]


async def rows(harness: Harness) -> list[int]:
    return [
        row[0]
        for row in await harness.pool.fetch(
            "SELECT record_offset FROM ledger.probe_rows ORDER BY 1"
        )
    ]


async def test_a_stale_owner_is_fenced_and_writes_nothing(harness: Harness) -> None:
    tp = TopicPartition(harness.source, 0)
    stale, current = (
        owner(harness, RowWriter(harness.sink)),
        owner(harness, RowWriter(harness.sink)),
    )
    stale_consumer, current_consumer = DrivenConsumer(), DrivenConsumer()
    await stale.on_assigned(stale_consumer, [tp])
    await current.on_assigned(current_consumer, [tp])
    await stale.process(stale_consumer, records(harness, range(3)))
    assert await rows(harness) == [] and stale.owned_partitions == frozenset()
    await current.process(current_consumer, records(harness, range(3)))
    assert await rows(harness) == [0, 1, 2]
    assert current_consumer.commits[-1] == {tp: 3}


async def test_redelivered_records_are_skipped_and_a_hole_is_never_left(harness: Harness) -> None:
    tp = TopicPartition(harness.source, 0)
    writer = RowWriter(harness.sink)
    partition_owner, consumer = owner(harness, writer), DrivenConsumer()
    await partition_owner.on_assigned(consumer, [tp])
    await partition_owner.process(consumer, records(harness, range(5)))
    await partition_owner.process(consumer, records(harness, range(3, 7)))
    assert await rows(harness) == list(range(7))
    await partition_owner.process(consumer, records(harness, range(9, 11)))
    assert await rows(harness) == list(range(7)) and consumer.positions[tp] == 7
    sunk = await read_topic(harness.producer.client._bootstrap_servers, harness.sink)
    assert [record.value for record in sunk] == [str(offset).encode() for offset in range(7)]


async def test_a_predecessors_outbox_is_published_first_and_in_order(harness: Harness) -> None:
    tp = TopicPartition(harness.source, 0)
    await harness.pool.execute(
        "INSERT INTO ledger.outbox (consumer, source_topic, source_partition, topic, key, value)"
        " SELECT 'probe', $1, 0, $2, 'k'::bytea, convert_to('left-' || n, 'UTF8')"
        " FROM generate_series(1, 3) n",
        harness.source,
        harness.sink,
    )
    partition_owner, consumer = owner(harness, RowWriter(harness.sink)), DrivenConsumer()
    await partition_owner.on_assigned(consumer, [tp])
    await partition_owner.process(consumer, records(harness, range(2)))
    sunk = await read_topic(harness.producer.client._bootstrap_servers, harness.sink)
    assert [record.value for record in sunk] == [b"left-1", b"left-2", b"left-3", b"0", b"1"]
    assert await harness.pool.fetchval("SELECT count(*) FROM ledger.outbox") == 0


async def test_a_record_that_always_fails_is_isolated_and_dead_lettered(harness: Harness) -> None:
    tp = TopicPartition(harness.source, 0)
    partition_owner, consumer = (
        owner(harness, RowWriter(harness.sink, frozenset({2}))),
        DrivenConsumer(),
    )
    await partition_owner.on_assigned(consumer, [tp])
    log = records(harness, range(5))
    for _ in range(12):
        await partition_owner.process(consumer, log[consumer.positions[tp] :])
        if consumer.positions[tp] >= 5:
            break
    assert await rows(harness) == [0, 1, 3, 4]
    letters = await read_topic(harness.producer.client._bootstrap_servers, f"{harness.source}.dlq")
    assert [dict(letter.headers)["error_code"] for letter in letters] == [b"processing_failed"]
    assert dict(letters[0].headers)["original_offset"] == b"2"


async def test_a_halt_stops_the_partition_and_reports_it(harness: Harness) -> None:
    tp = TopicPartition(harness.source, 0)
    fatal: list[BaseException] = []
    partition_owner, consumer = (
        owner(harness, RowWriter(harness.sink, halt=True), fatal),
        DrivenConsumer(),
    )
    await partition_owner.on_assigned(consumer, [tp])
    await partition_owner.process(consumer, records(harness, range(2)))
    assert len(fatal) == 1 and isinstance(fatal[0], HaltError)
    assert partition_owner.owned_partitions == frozenset() and await rows(harness) == []
