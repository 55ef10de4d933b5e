"""What a service implements to run on a partition owner, and the errors it can raise."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import asyncpg
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from shared.kafka.producer import OutgoingMessage, PublishedMessage

Record: TypeAlias = ConsumerRecord[bytes, bytes]


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
    KafkaError,
    OSError,
    TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    """Errors that a retry can cure: lost connections, lock conflicts, broker hiccups."""
    return isinstance(error, TRANSIENT_ERRORS)
