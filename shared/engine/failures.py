"""What a partition owner does when a batch fails: retry, isolate, and at last halt.

Nothing valid is ever stepped over. A transient failure (a lost connection, a lock conflict, a
broker hiccup) is retried with backoff for as long as it takes. Any other error is one nobody
foresaw (a bug, a column missing during a rolling deploy, a revoked grant): the batch is retried
a few times, then narrowed to one record at a time so the records before the culprit go
through, and then the partition halts with the reason. A halted partition is paused, its reason
is stored with its checkpoint (readiness checks and the audit report it) and it is retried on a
slow schedule, so once the cause is cured the record is decided, never dead-lettered.
A handler raising `HaltError` (the log contradicts itself) halts the partition at once.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from aiokafka import TopicPartition

from shared.engine.checkpoints import CheckpointStore, Claim
from shared.engine.messages import OutgoingMessage, Record
from shared.engine.partition_handler import HaltError, PartitionConsumer, is_transient
from shared.logs import get_logger
from shared.observability import metrics

ATTEMPTS_BEFORE_ISOLATION = 2
"""A batch failing this many times for an unforeseen reason is retried record by record."""
ATTEMPTS_BEFORE_HALT = 5
"""A single record failing this many times for an unforeseen reason halts its partition."""
RETRY_BACKOFF_BASE_SECONDS = 0.1
RETRY_BACKOFF_MAX_SECONDS = 5.0
RETRY_BACKOFF_EXPONENT_MAX = 16
"""Past this many doublings the backoff is at its maximum anyway; a longer outage must not
overflow the arithmetic (an hour of failures is thousands of attempts)."""
HALT_RETRY_FIRST_SECONDS = 2.0
HALT_RETRY_MAX_SECONDS = 30.0
"""A halted partition is retried after 2 s, then after twice as long each time, up to this."""
ERROR_TEXT_MAX_CHARACTERS = 1_000

logger = get_logger(__name__)


@dataclass(slots=True)
class Halt:
    reason: str
    retry_at: float
    """`time.monotonic()` at which the partition is tried again."""
    times: int
    """How many times in a row the partition halted."""


@dataclass(slots=True)
class OwnedPartition:
    """What the owner knows of one partition it holds."""

    claim: Claim
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    outbox_pending: bool = True
    failures: int = 0
    """Unforeseen failures in a row: these isolate and then halt."""
    transient_failures: int = 0
    """Transient failures in a row: these only set the backoff."""
    isolate_through_offset: int = -1
    halt: Halt | None = None
    retrying: bool = False
    """A halted partition resumed for one more try."""

    @property
    def paused(self) -> bool:
        return self.halt is not None and not self.retrying


def backoff_seconds(attempt: int) -> float:
    exponent = min(attempt, RETRY_BACKOFF_EXPONENT_MAX)
    return float(min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_BASE_SECONDS * 2**exponent))


def describe(error: BaseException) -> str:
    """A bounded, one-line description of an error (never a `repr` of unbounded data)."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= ERROR_TEXT_MAX_CHARACTERS else text[:ERROR_TEXT_MAX_CHARACTERS]


def count_dead_letters(consumer_name: str, letters: Sequence[OutgoingMessage]) -> None:
    for letter in letters:
        code = (dict(letter.headers).get("error_code") or b"unknown").decode(errors="replace")
        metrics.DEAD_LETTERS.labels(consumer_name, code).inc()


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    consumer_name: str
    pool: asyncpg.Pool
    checkpoints: CheckpointStore

    async def handle(
        self,
        consumer: PartitionConsumer,
        topic_partition: TopicPartition,
        owned: OwnedPartition,
        pending: list[Record],
        error: Exception,
    ) -> None:
        transient = is_transient(error)
        if transient:
            owned.transient_failures += 1
        else:
            owned.failures += 1
        metrics.PROCESSING_FAILURES.labels(self.consumer_name, str(transient).lower()).inc()
        logger.error(
            "batch failed; rolled back", topic=topic_partition.topic,
            partition=topic_partition.partition, first_offset=pending[0].offset,
            attempt=owned.transient_failures if transient else owned.failures,
            transient=transient, error=describe(error), exc_info=not transient,
        )  # fmt: skip
        consumer.seek(topic_partition, owned.claim.next_offset)
        where = f"record {topic_partition.topic}[{topic_partition.partition}]@{pending[0].offset}"
        if isinstance(error, HaltError):
            await self.halt(consumer, topic_partition, owned, describe(error))
        elif transient:
            await asyncio.sleep(backoff_seconds(owned.transient_failures))
        elif owned.retrying:
            # A halted partition's one more try failed the same way: halt again at once.
            reason = f"{where} still fails: {describe(error)}"
            await self.halt(consumer, topic_partition, owned, reason)
        elif self._isolate_or_halt(owned, pending):
            reason = f"{where} keeps failing: {describe(error)}"
            await self.halt(consumer, topic_partition, owned, reason)
        else:
            await asyncio.sleep(backoff_seconds(owned.failures))

    @staticmethod
    def _isolate_or_halt(owned: OwnedPartition, pending: list[Record]) -> bool:
        """After repeated unforeseen failures: narrow a batch to one record at a time, and
        halt when one record alone keeps failing. True means halt."""
        isolating = owned.isolate_through_offset >= pending[0].offset
        if len(pending) > 1 and not isolating and owned.failures >= ATTEMPTS_BEFORE_ISOLATION:
            owned.isolate_through_offset = pending[-1].offset
            owned.failures = 0
            return False
        return (len(pending) == 1 or isolating) and owned.failures >= ATTEMPTS_BEFORE_HALT

    async def halt(
        self,
        consumer: PartitionConsumer,
        topic_partition: TopicPartition,
        owned: OwnedPartition,
        reason: str,
    ) -> None:
        """Stop taking records from the partition, say why everywhere, and try again later."""
        times = owned.halt.times + 1 if owned.halt is not None else 1
        delay = min(HALT_RETRY_MAX_SECONDS, HALT_RETRY_FIRST_SECONDS * 2 ** (times - 1))
        owned.halt = Halt(reason, time.monotonic() + delay, times)
        owned.retrying = False
        owned.failures = 0
        owned.transient_failures = 0
        consumer.pause(topic_partition)
        metrics.PARTITION_HALTS.labels(self.consumer_name, topic_partition.topic).inc()
        logger.critical(
            "partition halted; nothing is skipped, it is retried later", reason=reason,
            topic=topic_partition.topic, partition=topic_partition.partition,
            retry_in_seconds=delay,
        )  # fmt: skip
        try:
            async with self.pool.acquire() as connection:
                await self.checkpoints.record_halt(connection, topic_partition, owned.claim, reason)
        except Exception as error:
            logger.error("could not store the halt reason", error=describe(error))
