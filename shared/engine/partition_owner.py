"""The partition owner: one consumer decides each partition's records against PostgreSQL.

For every batch of one partition, a single PostgreSQL transaction (1) advances the checkpoint
with a fence, (2) runs the handler, which reads and writes its own state, and (3) stores the
messages the handler emits in the outbox. After commit the owner publishes those messages
(`acks=all`), deletes them from the outbox, gives waiting replies their positions, and only
then commits the Kafka offset. Kafka's committed offset is advisory: on assignment the owner
seeks to the checkpoint stored in PostgreSQL.

Failure rules:
- Another owner claimed the partition (its epoch is newer): this owner drops the partition.
- Same epoch, but the stored checkpoint moved (a rebuilt read model was swapped in, or a commit
  whose acknowledgement was lost did happen): adopt the stored checkpoint, publish any outbox
  leftovers first, and continue.
- The stored checkpoint lies past the end of the log (the embedded broker forgot its log) or
  before its beginning: refuse to skip silently; the process stops with the reason.
- Any other error rolls the batch back; `failures.FailurePolicy` retries, isolates and halts.
"""

import asyncio
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from shared.engine.checkpoints import CheckpointStore, Claim, claim_partition
from shared.engine.failures import (
    RETRY_BACKOFF_BASE_SECONDS,
    FailurePolicy,
    OwnedPartition,
    backoff_seconds,
    count_dead_letters,
    describe,
)
from shared.engine.inbox import InboxStore
from shared.engine.messages import Record
from shared.engine.outbox import OutboxStore, StoredMessage
from shared.engine.partition_handler import (
    CheckpointOutsideLogError,
    FencedError,
    PartitionBatch,
    PartitionConsumer,
    PartitionHandler,
    is_transient,
)
from shared.kafka.log_end import LogEndProbe
from shared.kafka.producer import publish_all
from shared.logs import get_logger
from shared.observability import metrics

CLAIM_ATTEMPTS_MAX = 6
"""A partition that cannot be claimed after this many tries stops the process (and a supervisor
restarts it) rather than sitting assigned but unprocessed."""

logger = get_logger(__name__)


def owner_identity(consumer_name: str) -> str:
    """Who holds a partition, as operators see it: host, process and consumer."""
    return f"{socket.gethostname()}:{os.getpid()}:{consumer_name}"


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
        self.schema = schema
        self.identity = owner_identity(consumer_name)
        self.pool = pool
        self.producer = producer
        self.handler = handler
        self._log_end = log_end
        self._on_fatal = on_fatal
        self.checkpoints = CheckpointStore(schema, consumer_name)
        self.outbox = OutboxStore(schema, consumer_name)
        self.inbox = InboxStore(schema, consumer_name)
        self.owned: dict[TopicPartition, OwnedPartition] = {}
        self.failures = FailurePolicy(consumer_name, pool, self.checkpoints)
        self.consumer: PartitionConsumer | None = None

    @property
    def owned_partitions(self) -> frozenset[TopicPartition]:
        return frozenset(self.owned)

    def halted(self) -> dict[str, str]:
        """`topic[partition]` to the reason, for every halted partition this process holds."""
        return {
            f"{tp.topic}[{tp.partition}]": owned.halt.reason
            for tp, owned in sorted(self.owned.items())
            if owned.halt is not None
        }

    async def on_assigned(
        self, consumer: PartitionConsumer, partitions: Sequence[TopicPartition]
    ) -> None:
        """Claim each partition; aiokafka swallows errors raised here, so none may escape."""
        self.consumer = consumer
        for topic_partition in sorted(partitions):
            try:
                await self._claim_with_retries(consumer, topic_partition)
            except Exception as error:
                logger.critical("cannot take the partition", error=describe(error), exc_info=True)
                self._on_fatal(error)
                return

    async def on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        released = [(tp, self.owned.pop(tp).claim) for tp in partitions if tp in self.owned]
        await self.release(released)

    async def release(self, owned: Sequence[tuple[TopicPartition, Claim]]) -> None:
        """Mark partitions free (not orphaned) in PostgreSQL; best effort, the epoch fences."""
        try:
            async with self.pool.acquire() as connection:
                await self.checkpoints.release(connection, owned)
        except Exception as error:
            logger.warning("could not release partitions", error=describe(error))

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
                logger.warning("claim failed; retrying", attempt=attempt, error=describe(error))
                await asyncio.sleep(backoff_seconds(attempt))

    async def _claim(self, consumer: PartitionConsumer, topic_partition: TopicPartition) -> None:
        claim = await claim_partition(
            self.pool, self.checkpoints, self._log_end, consumer, topic_partition, self.identity
        )
        consumer.seek(topic_partition, claim.next_offset)
        consumer.resume(topic_partition)
        self.owned[topic_partition] = OwnedPartition(claim)
        logger.info(
            "partition claimed", consumer=self.consumer_name, topic=topic_partition.topic,
            partition=topic_partition.partition, next_offset=claim.next_offset, epoch=claim.epoch,
        )  # fmt: skip

    async def _process_partition(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, records: list[Record]
    ) -> None:
        owned = self.owned.get(topic_partition)
        if owned is None or owned.paused:
            return
        async with owned.lock:
            if self.owned.get(topic_partition) is not owned or owned.paused:
                return
            if owned.outbox_pending and not await self.try_flush(consumer, topic_partition, owned):
                return
            pending = [record for record in records if record.offset >= owned.claim.next_offset]
            if not pending:
                return
            try:
                await self._apply_in_order(consumer, topic_partition, owned, pending)
            except FencedError:
                await self._on_fenced(consumer, topic_partition, owned)
            except Exception as error:
                await self.failures.handle(consumer, topic_partition, owned, pending, error)

    async def try_flush(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, owned: OwnedPartition
    ) -> bool:
        """Leftovers go out before anything new; a failure here is never charged to records."""
        try:
            await self.flush_outbox(topic_partition, owned)
        except Exception as error:
            logger.warning("outbox leftovers not published yet", error=describe(error))
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
        self._succeeded(topic_partition, owned)
        if batch[-1].offset >= owned.isolate_through_offset:
            owned.isolate_through_offset = -1
        if len(batch) < len(pending):
            consumer.seek(topic_partition, owned.claim.next_offset)
        await self._commit_kafka_offset(consumer, topic_partition, owned.claim.next_offset)

    def _succeeded(self, topic_partition: TopicPartition, owned: OwnedPartition) -> None:
        owned.failures = 0
        owned.transient_failures = 0
        if owned.halt is not None:
            logger.warning(
                "halted partition resumed: the records that halted it went through",
                topic=topic_partition.topic, partition=topic_partition.partition,
            )  # fmt: skip
        owned.halt = None
        owned.retrying = False

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
        async with self.pool.acquire() as connection, connection.transaction():
            advanced = await self.checkpoints.advance(
                connection, batch.topic, batch.partition, owned.claim, next_offset
            )
            if not advanced:
                raise FencedError(f"{batch.topic}[{batch.partition}]: checkpoint moved")
            result = await self.handler.handle(connection, batch)
            if result.dead_letters:
                # Dead letters go out before commit: a crash now repeats them, never loses them.
                await publish_all(self.producer, result.dead_letters)
                count_dead_letters(self.consumer_name, result.dead_letters)
            stored = await self.outbox.add(
                connection, batch.topic, batch.partition, result.messages
            )
        owned.claim = replace(owned.claim, next_offset=next_offset)
        metrics.RECORDS_PROCESSED.labels(self.consumer_name, batch.topic).inc(len(records))
        metrics.BATCHES_COMMITTED.labels(self.consumer_name).inc()
        if stored:
            await self.publish_stored(stored)
        owned.outbox_pending = False

    async def publish_stored(self, stored: Sequence[StoredMessage]) -> None:
        """Publish, then in one transaction forget the rows and complete waiting replies."""
        published = await publish_all(self.producer, [item.message for item in stored])
        async with self.pool.acquire() as connection, connection.transaction():
            await self.outbox.remove(connection, [item.outbox_id for item in stored])
            payloads = await self.inbox.record_positions(connection, published)
            await self.inbox.notify(connection, payloads)
        metrics.OUTBOX_PUBLISHED.labels(self.consumer_name).inc(len(published))

    async def flush_outbox(self, topic_partition: TopicPartition, owned: OwnedPartition) -> None:
        """Publish what a predecessor (or a failed publish) left, oldest first."""
        while True:
            async with self.pool.acquire() as connection:
                leftovers = await self.outbox.pending(
                    connection, topic_partition.topic, topic_partition.partition
                )
            if not leftovers:
                break
            logger.info("publishing outbox leftovers", count=len(leftovers))
            await self.publish_stored(leftovers)
        owned.outbox_pending = False

    async def _commit_kafka_offset(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, offset: int
    ) -> None:
        """Advisory only: PostgreSQL holds the truth, so a failed commit is merely logged."""
        try:
            await consumer.commit({topic_partition: offset})
        except (KafkaError, AssertionError) as error:
            logger.debug("kafka offset commit skipped", error=describe(error))

    def drop(self, topic_partition: TopicPartition, owned: OwnedPartition) -> None:
        """Forget a partition, unless a newer claim of it has replaced this one meanwhile."""
        if self.owned.get(topic_partition) is owned:
            del self.owned[topic_partition]

    async def _on_fenced(
        self, consumer: PartitionConsumer, topic_partition: TopicPartition, owned: OwnedPartition
    ) -> None:
        metrics.FENCED.labels(self.consumer_name).inc()
        async with self.pool.acquire() as connection:
            stored = await self.checkpoints.read(
                connection, topic_partition.topic, topic_partition.partition
            )
        if stored is None or stored.epoch != owned.claim.epoch:
            logger.warning(
                "fenced: another owner claimed the partition; dropping it",
                topic=topic_partition.topic, partition=topic_partition.partition,
            )  # fmt: skip
            self.drop(topic_partition, owned)
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
