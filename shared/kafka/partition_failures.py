"""What a partition owner does when a batch fails: retry, isolate, and at last dead-letter.

A transient failure (a lost connection, a lock conflict, a broker hiccup) is retried with backoff
for as long as it takes. A batch that fails `ATTEMPTS_BEFORE_ISOLATION` times for another reason
is retried one record at a time; the single record that still fails goes to the dead-letter topic
with the reason, and the checkpoint steps over it in the same transaction.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition

from shared.kafka.checkpoints import CheckpointStore, Claim
from shared.kafka.dead_letters import park_failed_record
from shared.kafka.partition_handler import PartitionConsumer, Record, is_transient
from shared.kafka.producer import OutgoingMessage
from shared.logs import get_logger
from shared.observability import metrics

ATTEMPTS_BEFORE_ISOLATION = 3
"""A batch failing this many times for a non-transient reason is retried record by record."""
RETRY_BACKOFF_BASE_SECONDS = 0.1
RETRY_BACKOFF_MAX_SECONDS = 5.0

logger = get_logger(__name__)


@dataclass(slots=True)
class OwnedPartition:
    """What the owner knows of one partition it holds."""

    claim: Claim
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    outbox_pending: bool = True
    failures: int = 0
    isolate_through_offset: int = -1


def backoff_seconds(attempt: int) -> float:
    return float(min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_BASE_SECONDS * 2**attempt))


def count_dead_letters(consumer_name: str, letters: Sequence[OutgoingMessage]) -> None:
    for letter in letters:
        code = dict(letter.headers).get("error_code", b"unknown").decode(errors="replace")
        metrics.DEAD_LETTERS.labels(consumer_name, code).inc()


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    consumer_name: str
    pool: asyncpg.Pool
    checkpoints: CheckpointStore
    producer: AIOKafkaProducer

    async def handle(
        self,
        consumer: PartitionConsumer,
        topic_partition: TopicPartition,
        owned: OwnedPartition,
        pending: list[Record],
        error: Exception,
    ) -> None:
        transient = is_transient(error)
        owned.failures += 1
        metrics.PROCESSING_FAILURES.labels(self.consumer_name, str(transient).lower()).inc()
        logger.error(
            "batch failed; rolled back", topic=topic_partition.topic,
            partition=topic_partition.partition, first_offset=pending[0].offset,
            attempt=owned.failures, transient=transient, error=repr(error), exc_info=not transient,
        )  # fmt: skip
        consumer.seek(topic_partition, owned.claim.next_offset)
        if not transient and owned.failures >= ATTEMPTS_BEFORE_ISOLATION:
            if len(pending) > 1 and owned.isolate_through_offset < pending[0].offset:
                owned.isolate_through_offset = pending[-1].offset
                owned.failures = 0
            elif pending[0].offset == owned.claim.next_offset:
                try:
                    await self._dead_letter_alone(owned, pending[0], error)
                    return
                except Exception as letter_error:
                    logger.error("could not dead-letter the record", error=repr(letter_error))
        await asyncio.sleep(backoff_seconds(owned.failures))

    async def _dead_letter_alone(
        self, owned: OwnedPartition, record: Record, error: Exception
    ) -> None:
        """The one record that fails on its own: park it in the dead-letter topic and move on."""
        letter = await park_failed_record(
            self.pool, self.checkpoints, self.producer, owned.claim, record, error
        )
        if letter is None:
            return
        owned.claim = replace(owned.claim, next_offset=record.offset + 1)
        owned.failures = 0
        count_dead_letters(self.consumer_name, [letter])
        logger.error("record dead-lettered after repeated failures", offset=record.offset)
