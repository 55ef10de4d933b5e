"""The partition owner on real PostgreSQL, a real broker and a real aiokafka consumer (assigned
by hand, see tests/support/owner_driver.py): fencing, order, leftovers, and what failures do.

Nothing valid is stepped over: an error nobody foresaw retries, then halts the partition with
the reason stored beside its checkpoint, and once cured the record is applied, never
dead-lettered; a `HaltError` halts at once.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer, TopicPartition

from ledgerbus.operations import migrate_all
from shared.engine.messages import OutgoingMessage
from shared.engine.partition_handler import (
    HaltError,
    HandlerResult,
    PartitionBatch,
    TransientError,
)
from shared.engine.partition_owner import PartitionOwner
from shared.infra.provision import Infrastructure
from shared.kafka.log_end import LogEndProbe
from shared.kafka.producer import create_producer
from shared.kafka.topics import TopicDefinition, create_topics
from shared.observability.consumers import OWNER_HEARTBEAT_STALE_SECONDS
from shared.postgres.pool import create_pool
from tests.support.owner_driver import DrivenOwner, driven
from tests.support.stacks import create_database, publish, read_topic
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
HALT_CURED_TIMEOUT_SECONDS = 45.0
LONG_BATCH_SECONDS = 3.0


@dataclass
class Harness:
    bootstrap: str
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    probe: LogEndProbe
    source: str
    sink: str


class RowWriter:
    """Writes one row per record and emits one message per record; can be told to fail."""

    def __init__(self, sink: str) -> None:
        self.sink = sink
        self.fail_values: set[bytes] = set()
        self.failure: type[Exception] = ValueError
        self.calls = 0
        self.handled: set[bytes] = set()
        """Values written in a transaction that reached its end (it may still roll back)."""

    async def handle(self, connection: asyncpg.Connection, batch: PartitionBatch) -> HandlerResult:
        self.calls += 1
        values = [record.value or b"" for record in batch.records]
        if self.fail_values & set(values):
            raise self.failure(f"cannot handle {sorted(self.fail_values & set(values))}")
        await connection.execute("INSERT INTO ledger.probe_rows SELECT unnest($1::bytea[])", values)
        self.handled.update(values)
        return HandlerResult(messages=[OutgoingMessage(self.sink, b"k", value) for value in values])


@pytest_asyncio.fixture(loop_scope="session")
async def harness(infrastructure: Infrastructure) -> AsyncIterator[Harness]:
    dsn = await create_database(infrastructure.database_url)
    await migrate_all(dsn)
    prefix = f"owner-{uuid.uuid4().hex[:8]}"
    source, sink = f"{prefix}.source", f"{prefix}.sink"
    bootstrap = infrastructure.kafka_bootstrap_servers
    await create_topics(
        bootstrap,
        [TopicDefinition(source, 1, 1), TopicDefinition(sink, 1, 1),
         TopicDefinition(f"{source}.dlq", 1, 1)],
    )  # fmt: skip
    pool = await create_pool(dsn)
    await pool.execute("CREATE TABLE ledger.probe_rows (value bytea PRIMARY KEY)")
    producer = create_producer(bootstrap, client_id="tests")
    probe = LogEndProbe(bootstrap, client_id="tests")
    await producer.start()
    await probe.start()
    yield Harness(bootstrap, pool, producer, probe, source, sink)
    await probe.stop()
    await producer.stop()
    await pool.close()


def owner(harness: Harness, handler: RowWriter, fatal: list[BaseException]) -> PartitionOwner:
    return PartitionOwner(
        consumer_name="probe", schema="ledger", pool=harness.pool, producer=harness.producer,
        handler=handler, on_fatal=fatal.append, log_end=harness.probe,
    )  # fmt: skip


async def rows(harness: Harness) -> list[bytes]:
    return [row[0] for row in await harness.pool.fetch("SELECT value FROM ledger.probe_rows")]


async def send(harness: Harness, values: list[bytes]) -> None:
    await publish(harness.bootstrap, harness.source, [(b"k", value) for value in values])


async def started(harness: Harness, handler: RowWriter, *, upkeep: bool = False) -> DrivenOwner:
    partition_owner = owner(harness, handler, [])
    driver = await driven(partition_owner, harness.bootstrap, upkeep=upkeep)
    await driver.take([TopicPartition(harness.source, 0)])
    return driver


async def test_a_stale_owner_is_fenced_and_writes_nothing(harness: Harness) -> None:
    await send(harness, [b"a0", b"a1", b"a2"])
    stale = await started(harness, RowWriter(harness.sink))
    current = await started(harness, RowWriter(harness.sink))
    try:
        await stale.drive_until(lambda: stale.batches >= 1)
        assert await rows(harness) == []
        assert stale.owner.owned_partitions == frozenset()
        await current.drive_until(lambda: current.batches >= 1)
        assert sorted(await rows(harness)) == [b"a0", b"a1", b"a2"]
    finally:
        await stale.stop()
        await current.stop()


async def test_a_predecessors_outbox_is_published_first_and_in_order(harness: Harness) -> None:
    await harness.pool.execute(
        "INSERT INTO ledger.outbox (consumer, source_topic, source_partition, topic, key, value)"
        " SELECT 'probe', $1, 0, $2, 'k'::bytea, convert_to('left-' || n, 'UTF8')"
        " FROM generate_series(1, 3) n",
        harness.source,
        harness.sink,
    )
    before = len(await read_topic(harness.bootstrap, harness.sink))
    await send(harness, [b"b0"])
    driver = await started(harness, RowWriter(harness.sink))
    try:
        await driver.drive_until(lambda: driver.batches >= 1)
    finally:
        await driver.stop()
    sunk = [record.value for record in await read_topic(harness.bootstrap, harness.sink)]
    assert sunk[before:] == [b"left-1", b"left-2", b"left-3", b"b0"]
    assert await harness.pool.fetchval("SELECT count(*) FROM ledger.outbox") == 0


async def halted_reason(harness: Harness) -> str | None:
    value = await harness.pool.fetchval(
        "SELECT halted_reason FROM ledger.checkpoints WHERE consumer = 'probe' AND topic = $1",
        harness.source,
    )
    return None if value is None else str(value)


async def test_an_unforeseen_error_halts_the_partition_and_once_cured_nothing_was_skipped(
    harness: Harness,
) -> None:
    values = [b"c0", b"c1-poisoned", b"c2"]
    writer = RowWriter(harness.sink)
    writer.fail_values = {b"c1-poisoned"}
    await send(harness, values)
    driver = await started(harness, writer, upkeep=True)
    try:
        await driver.drive_until(lambda: bool(driver.owner.halted()))
        reason = await halted_reason(harness)
        assert reason is not None
        assert "c1-poisoned" in reason
        assert b"c0" in await rows(harness)  # isolation let the record before it through
        assert b"c2" not in await rows(harness)
        writer.fail_values = set()  # the cure: a deploy fixed the bug
        await driver.drive_until(lambda: b"c2" in writer.handled, HALT_CURED_TIMEOUT_SECONDS)
        assert not driver.owner.halted()
        assert {b"c0", b"c1-poisoned", b"c2"} <= set(await rows(harness))
        assert await halted_reason(harness) is None
    finally:
        await driver.stop()
    letters = await read_topic(harness.bootstrap, f"{harness.source}.dlq")
    assert [letter for letter in letters if letter.value in values] == []


async def test_a_halt_error_halts_at_once(harness: Harness) -> None:
    writer = RowWriter(harness.sink)
    writer.fail_values, writer.failure = {b"d0"}, HaltError
    await send(harness, [b"d0"])
    driver = await started(harness, writer)
    try:
        await driver.drive_until(lambda: bool(driver.owner.halted()))
        assert writer.calls == 1
    finally:
        await driver.stop()
    assert "cannot handle" in (await halted_reason(harness) or "")


async def test_a_transient_error_retries_until_it_passes(harness: Harness) -> None:
    writer = RowWriter(harness.sink)
    writer.fail_values, writer.failure = {b"e0"}, TransientError
    await send(harness, [b"e0"])
    driver = await started(harness, writer)
    try:
        await driver.drive_until(lambda: writer.calls >= 8)
        assert not driver.owner.halted()
        writer.fail_values = set()
        await driver.drive_until(lambda: b"e0" in writer.handled)
        assert not driver.owner.halted()
        await eventually(lambda: rows(harness), lambda found: b"e0" in found, "e0 committed")
    finally:
        await driver.stop()


HEARTBEAT_SAMPLE_SECONDS = 0.1
"""How often the test samples the owner's heartbeat age while a long batch runs."""


class SlowWriter(RowWriter):
    """Holds its partition's lock (a batch in progress) for a while."""

    def __init__(self, sink: str, seconds: float) -> None:
        super().__init__(sink)
        self.seconds = seconds

    async def handle(self, connection: asyncpg.Connection, batch: PartitionBatch) -> HandlerResult:
        await asyncio.sleep(self.seconds)
        return await super().handle(connection, batch)


async def test_heartbeats_go_on_while_a_long_batch_holds_the_partition(harness: Harness) -> None:
    """Reproduces a live owner reported unowned: the heartbeat ran in the same loop as the
    deadline sweep, which waited for the lock of a partition whose batch was running."""
    await harness.pool.execute(
        "INSERT INTO ledger.deadlines (consumer, name, source_topic, source_partition, due_at,"
        " topic, value, message_id) VALUES ('probe', $1, $2, 0, now(), $3, 'v', $1)",
        uuid.uuid4().hex, harness.source, harness.sink,
    )  # fmt: skip
    await send(harness, [b"slow-" + uuid.uuid4().hex.encode()])
    driver = await started(harness, SlowWriter(harness.sink, LONG_BATCH_SECONDS), upkeep=True)
    ages: list[float] = []

    async def watch() -> None:
        while True:
            age = await harness.pool.fetchval(
                "SELECT extract(epoch FROM now() - heartbeat_at) FROM ledger.partition_owners"
                " WHERE consumer = 'probe' AND topic = $1 AND partition = 0",
                harness.source,
            )
            if age is not None:
                ages.append(float(age))
            await asyncio.sleep(HEARTBEAT_SAMPLE_SECONDS)  # sampling, not waiting

    watcher = asyncio.create_task(watch())
    try:
        await driver.drive_until(lambda: driver.batches >= 1)
    finally:
        watcher.cancel()
        await driver.stop()
    assert ages, "the owner stamped no heartbeat"
    assert max(ages) < OWNER_HEARTBEAT_STALE_SECONDS, ages
