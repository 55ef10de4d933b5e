"""The partition owner: one consumer decides each partition's records against PostgreSQL.

For every batch of one partition, a single PostgreSQL transaction (1) advances the checkpoint
with a fence, (2) runs the service's handler, which reads and writes its own state, and (3)
stores the messages the handler emits in the outbox. After commit the owner publishes those
messages (`acks=all`), deletes them from the outbox, lets the handler record their positions,
and only then commits the Kafka offset. Kafka's committed offset is advisory: on assignment the
owner seeks to the checkpoint stored in PostgreSQL.

Failure rules:
- Another owner claimed the partition (its epoch is newer): this owner drops the partition.
- Same epoch, but the stored checkpoint moved (a rebuilt read model was swapped in, or a commit
  whose acknowledgement was lost did happen): adopt the stored checkpoint, publish any outbox
  leftovers first, and continue.
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
from dataclasses import replace
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from shared.kafka.checkpoints import CheckpointStore, claim_partition
from shared.kafka.log_end import LogEndProbe
from shared.kafka.outbox import OutboxStore, StoredMessage
from shared.kafka.partition_failures import (
    RETRY_BACKOFF_BASE_SECONDS,
    FailurePolicy,
    OwnedPartition,
    backoff_seconds,
    count_dead_letters,
)
from shared.kafka.partition_handler import (
    CheckpointOutsideLogError,
    FencedError,
    HaltError,
    PartitionBatch,
    PartitionConsumer,
    PartitionHandler,
    Record,
    is_transient,
)
from shared.kafka.producer import publish_all
from shared.logs import get_logger
from shared.observability import metrics

CLAIM_ATTEMPTS_MAX = 6
"""A partition that cannot be claimed after this many tries stops the process (and a supervisor
restarts it) rather than sitting assigned but unprocessed."""
OUTBOX_SWEEP_INTERVAL_SECONDS = 1.0
"""How often leftovers (a failed publish, a crashed predecessor) are retried when idle."""

logger = get_logger(__name__)


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
        self._owned: dict[TopicPartition, OwnedPartition] = {}
        self._failures = FailurePolicy(consumer_name, pool, self._checkpoints, producer)
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
        """Claim each partition; aiokafka swallows errors raised here, so none may escape."""
        for topic_partition in sorted(partitions):
            try:
                await self._claim_with_retries(consumer, topic_partition)
            except Exception as error:
                logger.critical("cannot take the partition", error=str(error), exc_info=True)
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

    async def _claim_with_retries(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition
    ) -> None:
        for attempt in range(1, CLAIM_ATTEMPTS_MAX + 1):
            try:
                await self._claim(consumer, topic_partition)
                return
            except CheckpointOutsideLogError:
                raise
            except Exception as error:
                if not is_transient(error) or attempt == CLAIM_ATTEMPTS_MAX:
                    raise
                logger.warning("claim failed; retrying", attempt=attempt, error=repr(error))
                await asyncio.sleep(backoff_seconds(attempt))

    async def _claim(self, consumer: PartitionConsumer, topic_partition: TopicPartition) -> None:
        claim = await claim_partition(
            self._pool, self._checkpoints, self._log_end, consumer, topic_partition
        )
        consumer.seek(topic_partition, claim.next_offset)
        self._owned[topic_partition] = OwnedPartition(claim)
        logger.info(
            "partition claimed", consumer=self.consumer_name, topic=topic_partition.topic,
            partition=topic_partition.partition, next_offset=claim.next_offset, epoch=claim.epoch,
        )  # fmt: skip

    async def _process_partition(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, records: list[Record]
    ) -> None:
        owned = self._owned.get(topic_partition)
        if owned is None:
            return
        async with owned.lock:
            if self._owned.get(topic_partition) is not owned:
                return
            if owned.outbox_pending and not await self._try_flush(consumer, topic_partition, owned):
                return
            pending = [record for record in records if record.offset >= owned.claim.next_offset]
            if not pending:
                return
            try:
                await self._apply_in_order(consumer, topic_partition, owned, pending)
            except FencedError:
                await self._on_fenced(consumer, topic_partition, owned)
            except HaltError as error:
                logger.critical("partition halted", error=str(error))
                self._drop(topic_partition, owned)
                self._on_fatal(error)
            except Exception as error:
                await self._failures.handle(consumer, topic_partition, owned, pending, error)

    async def _try_flush(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, owned: OwnedPartition
    ) -> bool:
        """Leftovers go out before anything new; a failure here is never charged to records."""
        try:
            await self._flush_outbox(topic_partition, owned)
        except Exception as error:
            logger.warning("outbox leftovers not published yet", error=repr(error))
            consumer.seek(topic_partition, owned.claim.next_offset)
            await asyncio.sleep(RETRY_BACKOFF_BASE_SECONDS)
            return False
        return True

    async def _apply_in_order(
        self,
        consumer: PartitionConsumer,
        topic_partition: TopicPartition,
        owned: OwnedPartition,
        pending: list[Record],
    ) -> None:
        if pending[0].offset != owned.claim.next_offset:
            # Records between the checkpoint and this batch were never applied (for example a
            # batch dropped after an error): go back rather than leave a hole.
            logger.warning(
                "batch does not continue from the checkpoint; seeking back",
                topic=topic_partition.topic, partition=topic_partition.partition,
                expected=owned.claim.next_offset, received=pending[0].offset,
            )  # fmt: skip
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
        owned: OwnedPartition,
        records: Sequence[Record],
        partition_count: int,
    ) -> None:
        assert partition_count > topic_partition.partition, "the topic's metadata is known"
        next_offset = records[-1].offset + 1
        batch = PartitionBatch(
            topic_partition.topic, topic_partition.partition, records, partition_count
        )
        # Raised before the transaction: if its commit is acknowledged or not, leftovers must be
        # published before anything that follows (a lost COMMIT acknowledgement is ambiguous).
        owned.outbox_pending = True
        async with self._pool.acquire() as connection, connection.transaction():
            advanced = await self._checkpoints.advance(
                connection, batch.topic, batch.partition, owned.claim, next_offset
            )
            if not advanced:
                raise FencedError(f"{batch.topic}[{batch.partition}]: checkpoint moved")
            result = await self._handler.handle(connection, batch)
            if result.dead_letters:
                # Dead letters go out before commit: a crash now repeats them, never loses them.
                await publish_all(self._producer, result.dead_letters)
                count_dead_letters(self.consumer_name, result.dead_letters)
            stored = await self._outbox.add(
                connection, batch.topic, batch.partition, result.messages
            )
        owned.claim = replace(owned.claim, next_offset=next_offset)
        metrics.RECORDS_PROCESSED.labels(self.consumer_name, batch.topic).inc(len(records))
        metrics.BATCHES_COMMITTED.labels(self.consumer_name).inc()
        if stored:
            await self._publish_stored(stored, result.context)
        owned.outbox_pending = False

    async def _publish_stored(self, stored: Sequence[StoredMessage], context: Any) -> None:
        published = await publish_all(self._producer, [item.message for item in stored])
        async with self._pool.acquire() as connection, connection.transaction():
            await self._outbox.remove(connection, [item.outbox_id for item in stored])
            await self._handler.after_publish(connection, published, context)
        metrics.OUTBOX_PUBLISHED.labels(self.consumer_name).inc(len(published))

    async def _flush_outbox(self, topic_partition: TopicPartition, owned: OwnedPartition) -> None:
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

    def _drop(self, topic_partition: TopicPartition, owned: OwnedPartition) -> None:
        """Forget a partition, unless a newer claim of it has replaced this one meanwhile."""
        if self._owned.get(topic_partition) is owned:
            del self._owned[topic_partition]

    async def _on_fenced(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, owned: OwnedPartition
    ) -> None:
        metrics.FENCED.labels(self.consumer_name).inc()
        async with self._pool.acquire() as connection:
            stored = await self._checkpoints.read(
                connection, topic_partition.topic, topic_partition.partition
            )
        if stored is None or stored.epoch != owned.claim.epoch:
            logger.warning(
                "fenced: another owner claimed the partition; dropping it",
                topic=topic_partition.topic, partition=topic_partition.partition,
            )  # fmt: skip
            self._drop(topic_partition, owned)
            return
        logger.info(
            "checkpoint moved under this owner (read model replaced, or a commit whose answer"
            " was lost); continuing from the stored checkpoint",
            topic=topic_partition.topic, partition=topic_partition.partition,
            next_offset=stored.next_offset,
        )  # fmt: skip
        owned.claim = stored
        owned.outbox_pending = True
        consumer.seek(topic_partition, stored.next_offset)

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
