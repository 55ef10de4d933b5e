"""What runs on a partition owner (a processor or a projector), and the errors it can raise."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from shared.engine.messages import OutgoingMessage, Record


class PartitionConsumer(Protocol):
    """The part of aiokafka's consumer the owner uses."""

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...

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
    """What a handler decided: messages for the outbox, and dead letters.

    Dead letters are published before the transaction commits (a crash repeats them, never
    loses them); outbox messages are published after it commits.
    """

    messages: Sequence[OutgoingMessage] = ()
    dead_letters: Sequence[OutgoingMessage] = ()


class PartitionHandler(Protocol):
    async def handle(self, connection: asyncpg.Connection, batch: PartitionBatch) -> HandlerResult:
        """Decide a batch inside the owner's transaction; must not publish anything itself."""


class CheckpointOutsideLogError(RuntimeError):
    """The stored checkpoint does not lie within the log: records would be skipped or replayed."""


class FencedError(RuntimeError):
    pass


class TransientError(RuntimeError):
    """Raised by a handler for a conflict that retrying the batch resolves."""


class HaltError(RuntimeError):
    """Raised by a handler when going on would be wrong (a log that contradicts itself): the
    partition halts at once, with the reason, and nothing is skipped."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.UniqueViolationError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a failover in progress
    KafkaConnectionError,
    KafkaTimeoutError,  # aiokafka marks it not retriable, but it only says the broker is slow
    OSError,
    TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    """Errors that a retry can cure: lost connections, lock conflicts, broker hiccups.

    A Kafka error counts when aiokafka marks it retriable; a refused record size, for example,
    is not, so it never retries for ever on one record.
    """
    if isinstance(error, TRANSIENT_ERRORS):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))
