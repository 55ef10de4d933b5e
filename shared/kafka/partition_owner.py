"""The partition owner: one consumer decides each partition's records against PostgreSQL.

For every batch of one partition, a single PostgreSQL transaction (1) advances the checkpoint
with a fence, (2) runs the service's handler, which reads and writes its own state, and (3)
stores the messages the handler emits in the outbox. After commit the owner publishes those
messages (`acks=all`), deletes them from the outbox, lets the handler record their positions,
and only then commits the Kafka offset. Kafka's committed offset is advisory: on assignment the
owner seeks to the checkpoint stored in PostgreSQL.

Failure rules:
- Another owner claimed the partition (its epoch is newer): this owner drops the partition.
- A rebuilt read model was swapped in (the generation moved): re-read the checkpoint and seek.
- The stored checkpoint lies past the end of the log (the embedded broker forgot its log) or
  before its beginning: refuse to skip silently; the process stops with the reason.
- Any other error rolls the batch back and retries with backoff. A batch that keeps failing for a
  reason that is not transient is retried one record at a time, and the one record that still
  fails goes to the dead-letter topic with the reason, so the partition keeps flowing.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeAlias

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from shared.kafka.checkpoints import CheckpointStore, Claim
from shared.kafka.dead_letters import dead_letter
from shared.kafka.log_end import LogEndProbe
from shared.kafka.outbox import OutboxStore, StoredMessage
from shared.kafka.producer import OutgoingMessage, PublishedMessage, publish_all
from shared.logs import get_logger
from shared.observability import metrics

ATTEMPTS_BEFORE_ISOLATION = 3
"""A batch failing this many times for a non-transient reason is retried record by record."""
RETRY_BACKOFF_BASE_SECONDS = 0.1
RETRY_BACKOFF_MAX_SECONDS = 5.0
OUTBOX_SWEEP_INTERVAL_SECONDS = 1.0
"""How often leftovers (a failed publish, a crashed predecessor) are retried when idle."""
DEAD_LETTER_REASON_MAX_CHARACTERS = 500

Record: TypeAlias = ConsumerRecord[bytes, bytes]
logger = get_logger(__name__)


class PartitionConsumer(Protocol):
    """The part of aiokafka's consumer the owner uses."""

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]: ...

    def partitions_for_topic(self, topic: str) -> set[int] | None: ...


@dataclass(frozen=True, slots=True)
class PartitionBatch:
    topic: str
    partition: int
    records: Sequence[Record]
    partition_count: int
    """How many partitions the topic has, so a handler can check where a key belongs."""


@dataclass(frozen=True, slots=True)
class HandlerResult:
    """What a handler decided: messages for the outbox, dead letters, and its own context."""

    messages: Sequence[OutgoingMessage] = ()
    dead_letters: Sequence[OutgoingMessage] = ()
    context: Any = None


class PartitionHandler(Protocol):
    async def handle(self, connection: asyncpg.Connection, batch: PartitionBatch) -> HandlerResult:
        """Decide a batch inside the owner's transaction; must not publish anything itself."""

    async def after_publish(
        self,
        connection: asyncpg.Connection,
        published: Sequence[PublishedMessage],
        context: Any,
    ) -> None:
        """Record where the messages landed. `context` is None for a predecessor's leftovers."""


class CheckpointOutsideLogError(RuntimeError):
    """The stored checkpoint does not lie within the log: records would be skipped or replayed."""


class FencedError(RuntimeError):
    pass


class TransientError(RuntimeError):
    """Raised by a handler for a conflict that retrying the batch resolves."""


class HaltError(RuntimeError):
    """Raised by a handler when going on would be wrong (a read model that contradicts its
    log): the partition stops and the process exits with the reason, nothing is skipped."""


@dataclass(slots=True)
class _OwnedPartition:
    claim: Claim
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    outbox_pending: bool = True
    failures: int = 0
    isolate_through_offset: int = -1


def is_transient(error: BaseException) -> bool:
    """Errors that a retry can cure: lost connections, lock conflicts, broker hiccups."""
    transient = (
        TransientError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.DeadlockDetectedError,
        asyncpg.exceptions.SerializationError,
        asyncpg.exceptions.UniqueViolationError,
        asyncpg.exceptions.TooManyConnectionsError,
        asyncpg.exceptions.LockNotAvailableError,
        asyncpg.exceptions.QueryCanceledError,
        KafkaError,
        OSError,
        TimeoutError,
    )
    return isinstance(error, transient)


class PartitionOwner:
    """Runs a `PartitionHandler` for the partitions this process owns."""

    def __init__(
        self,
        *,
        consumer_name: str,
        schema: str,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        handler: PartitionHandler,
        on_fatal: Callable[[BaseException], None],
        log_end: LogEndProbe,
    ) -> None:
        self.consumer_name = consumer_name
        self._log_end = log_end
        self._pool = pool
        self._producer = producer
        self._handler = handler
        self._on_fatal = on_fatal
        self._checkpoints = CheckpointStore(schema, consumer_name)
        self._outbox = OutboxStore(schema, consumer_name)
        self._owned: dict[TopicPartition, _OwnedPartition] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def owned_partitions(self) -> frozenset[TopicPartition]:
        return frozenset(self._owned)

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_outbox_forever(), name="outbox-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def on_assigned(
        self, consumer: PartitionConsumer, partitions: Sequence[TopicPartition]
    ) -> None:
        for topic_partition in sorted(partitions):
            try:
                await self._claim(consumer, topic_partition)
            except CheckpointOutsideLogError as error:
                logger.critical("checkpoint outside the log", error=str(error))
                self._on_fatal(error)
                return

    def on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        for topic_partition in partitions:
            self._owned.pop(topic_partition, None)

    async def process(self, consumer: PartitionConsumer, records: Sequence[Record]) -> None:
        """Apply one fetched batch: partitions run concurrently, each in its own transaction."""
        groups: dict[TopicPartition, list[Record]] = {}
        for record in records:
            groups.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
        await asyncio.gather(
            *(self._process_partition(consumer, tp, group) for tp, group in groups.items())
        )

    async def _claim(self, consumer: PartitionConsumer, topic_partition: TopicPartition) -> None:
        async with self._pool.acquire() as connection:
            claim = await self._checkpoints.claim(
                connection, topic_partition.topic, topic_partition.partition
            )
        end = (await consumer.end_offsets([topic_partition]))[topic_partition]
        if claim.next_offset > end:
            # Some brokers under-report the end (see log_end); read the last batch to be sure.
            end = (await self._log_end.end_offsets([topic_partition]))[topic_partition]
        beginning = (await consumer.beginning_offsets([topic_partition]))[topic_partition]
        if claim.next_offset > end:
            raise CheckpointOutsideLogError(
                f"{self.consumer_name}: the checkpoint of {topic_partition.topic}"
                f"[{topic_partition.partition}] is offset {claim.next_offset}, but the log ends at"
                f" {end}. The broker lost records (the embedded broker forgets its log when it"
                " restarts). Refusing to skip: reset this environment's PostgreSQL state or"
                " restore the log."
            )
        if claim.next_offset < beginning:
            raise CheckpointOutsideLogError(
                f"{self.consumer_name}: the checkpoint of {topic_partition.topic}"
                f"[{topic_partition.partition}] is offset {claim.next_offset}, but the log now"
                f" begins at {beginning}; records were deleted before they were applied."
            )
        consumer.seek(topic_partition, claim.next_offset)
        self._owned[topic_partition] = _OwnedPartition(claim)
        logger.info(
            "partition claimed",
            consumer=self.consumer_name,
            topic=topic_partition.topic,
            partition=topic_partition.partition,
            next_offset=claim.next_offset,
            epoch=claim.epoch,
        )

    async def _process_partition(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, records: list[Record]
    ) -> None:
        owned = self._owned.get(topic_partition)
        if owned is None:
            return
        async with owned.lock:
            if self._owned.get(topic_partition) is not owned:
                return
            pending = [record for record in records if record.offset >= owned.claim.next_offset]
            try:
                if owned.outbox_pending:
                    await self._flush_outbox(topic_partition, owned)
                if not pending:
                    return
                await self._apply_in_order(consumer, topic_partition, owned, pending)
            except FencedError:
                await self._on_fenced(consumer, topic_partition, owned)
            except HaltError as error:
                logger.critical("partition halted", error=str(error))
                self._owned.pop(topic_partition, None)
                self._on_fatal(error)
            except Exception as error:
                await self._on_failure(consumer, topic_partition, owned, pending, error)

    async def _apply_in_order(
        self,
        consumer: PartitionConsumer,
        topic_partition: TopicPartition,
        owned: _OwnedPartition,
        pending: list[Record],
    ) -> None:
        if pending[0].offset != owned.claim.next_offset:
            # Records between the checkpoint and this batch were never applied (for example a
            # batch dropped after an error): go back rather than leave a hole.
            logger.warning(
                "batch does not continue from the checkpoint; seeking back",
                topic=topic_partition.topic,
                partition=topic_partition.partition,
                expected=owned.claim.next_offset,
                received=pending[0].offset,
            )
            consumer.seek(topic_partition, owned.claim.next_offset)
            return
        isolating = owned.isolate_through_offset >= pending[0].offset
        batch = pending[:1] if isolating else pending
        started = time.perf_counter()
        partition_count = len(consumer.partitions_for_topic(topic_partition.topic) or ())
        await self._apply(topic_partition, owned, batch, partition_count)
        metrics.BATCH_SECONDS.labels(self.consumer_name).observe(time.perf_counter() - started)
        owned.failures = 0
        if batch[-1].offset >= owned.isolate_through_offset:
            owned.isolate_through_offset = -1
        if len(batch) < len(pending):
            consumer.seek(topic_partition, owned.claim.next_offset)
        await self._commit_kafka_offset(consumer, topic_partition, owned.claim.next_offset)

    async def _apply(
        self,
        topic_partition: TopicPartition,
        owned: _OwnedPartition,
        records: Sequence[Record],
        partition_count: int,
    ) -> None:
        assert partition_count > topic_partition.partition, "the topic's metadata is known"
        next_offset = records[-1].offset + 1
        batch = PartitionBatch(
            topic_partition.topic, topic_partition.partition, records, partition_count
        )
        async with self._pool.acquire() as connection, connection.transaction():
            advanced = await self._checkpoints.advance(
                connection, batch.topic, batch.partition, owned.claim, next_offset
            )
            if not advanced:
                raise FencedError(f"{batch.topic}[{batch.partition}] was claimed by another owner")
            result = await self._handler.handle(connection, batch)
            if result.dead_letters:
                # Dead letters go out before commit: a crash now repeats them, never loses them.
                await publish_all(self._producer, result.dead_letters)
                self._count_dead_letters(result.dead_letters)
            stored = await self._outbox.add(
                connection, batch.topic, batch.partition, result.messages
            )
        owned.claim = replace(owned.claim, next_offset=next_offset)
        metrics.RECORDS_PROCESSED.labels(self.consumer_name, batch.topic).inc(len(records))
        metrics.BATCHES_COMMITTED.labels(self.consumer_name).inc()
        if stored:
            owned.outbox_pending = True
            await self._publish_stored(stored, result.context)
            owned.outbox_pending = False

    async def _publish_stored(self, stored: Sequence[StoredMessage], context: Any) -> None:
        published = await publish_all(self._producer, [item.message for item in stored])
        async with self._pool.acquire() as connection, connection.transaction():
            await self._outbox.remove(connection, [item.outbox_id for item in stored])
            await self._handler.after_publish(connection, published, context)
        metrics.OUTBOX_PUBLISHED.labels(self.consumer_name).inc(len(published))

    async def _flush_outbox(self, topic_partition: TopicPartition, owned: _OwnedPartition) -> None:
        """Publish what a predecessor (or a failed publish) left, oldest first."""
        while True:
            async with self._pool.acquire() as connection:
                leftovers = await self._outbox.pending(
                    connection, topic_partition.topic, topic_partition.partition
                )
            if not leftovers:
                break
            logger.info("publishing outbox leftovers", count=len(leftovers))
            await self._publish_stored(leftovers, None)
        owned.outbox_pending = False

    async def _commit_kafka_offset(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, offset: int
    ) -> None:
        """Advisory only: PostgreSQL holds the truth, so a failed commit is merely logged."""
        try:
            await consumer.commit({topic_partition: offset})
        except (KafkaError, AssertionError) as error:
            logger.debug("kafka offset commit skipped", error=str(error))

    async def _on_fenced(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, owned: _OwnedPartition
    ) -> None:
        metrics.FENCED.labels(self.consumer_name).inc()
        async with self._pool.acquire() as connection:
            stored = await self._checkpoints.read(
                connection, topic_partition.topic, topic_partition.partition
            )
        if stored is None or stored.epoch != owned.claim.epoch:
            logger.warning(
                "fenced: another owner claimed the partition; dropping it",
                topic=topic_partition.topic,
                partition=topic_partition.partition,
            )
            self._owned.pop(topic_partition, None)
            return
        logger.info(
            "read model replaced; continuing from its checkpoint",
            topic=topic_partition.topic,
            partition=topic_partition.partition,
            next_offset=stored.next_offset,
        )
        owned.claim = stored
        consumer.seek(topic_partition, stored.next_offset)

    async def _on_failure(
        self,
        consumer: PartitionConsumer,
        topic_partition: TopicPartition,
        owned: _OwnedPartition,
        pending: list[Record],
        error: Exception,
    ) -> None:
        transient = is_transient(error)
        owned.failures += 1
        metrics.PROCESSING_FAILURES.labels(self.consumer_name, str(transient).lower()).inc()
        logger.error(
            "batch failed; rolled back",
            topic=topic_partition.topic,
            partition=topic_partition.partition,
            first_offset=pending[0].offset if pending else None,
            attempt=owned.failures,
            transient=transient,
            error=repr(error),
            exc_info=not transient,
        )
        consumer.seek(topic_partition, owned.claim.next_offset)
        if not transient and owned.failures >= ATTEMPTS_BEFORE_ISOLATION and pending:
            if len(pending) > 1 and owned.isolate_through_offset < pending[0].offset:
                owned.isolate_through_offset = pending[-1].offset
                owned.failures = 0
            elif pending[0].offset == owned.claim.next_offset:
                await self._dead_letter_alone(topic_partition, owned, pending[0], error)
                return
        delay = min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_BASE_SECONDS * 2**owned.failures)
        await asyncio.sleep(delay)

    async def _dead_letter_alone(
        self,
        topic_partition: TopicPartition,
        owned: _OwnedPartition,
        record: Record,
        error: Exception,
    ) -> None:
        """The one record that fails on its own: park it in the dead-letter topic and move on."""
        letter = dead_letter(
            record, "processing_failed", repr(error)[:DEAD_LETTER_REASON_MAX_CHARACTERS]
        )
        async with self._pool.acquire() as connection, connection.transaction():
            advanced = await self._checkpoints.advance(
                connection, record.topic, record.partition, owned.claim, record.offset + 1
            )
            if not advanced:
                return
            await publish_all(self._producer, [letter])
        owned.claim = replace(owned.claim, next_offset=record.offset + 1)
        owned.failures = 0
        self._count_dead_letters([letter])
        logger.error("record dead-lettered after repeated failures", offset=record.offset)

    def _count_dead_letters(self, letters: Sequence[OutgoingMessage]) -> None:
        for letter in letters:
            code = dict(letter.headers).get("error_code", b"unknown").decode(errors="replace")
            metrics.DEAD_LETTERS.labels(self.consumer_name, code).inc()

    async def _sweep_outbox_forever(self) -> None:
        while True:
            await asyncio.sleep(OUTBOX_SWEEP_INTERVAL_SECONDS)
            for topic_partition, owned in list(self._owned.items()):
                if not owned.outbox_pending or owned.lock.locked():
                    continue
                async with owned.lock:
                    try:
                        await self._flush_outbox(topic_partition, owned)
                    except Exception as error:
                        logger.warning("outbox flush failed; will retry", error=repr(error))
