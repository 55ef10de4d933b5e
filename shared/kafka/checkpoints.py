"""Partition checkpoints in PostgreSQL: claim on assignment, advance with a fence per batch."""

from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition

from shared.kafka.log_end import LogEndProbe
from shared.kafka.partition_handler import CheckpointOutsideLogError, PartitionConsumer
from shared.postgres.migrations import quote_schema


@dataclass(frozen=True, slots=True)
class Claim:
    next_offset: int
    epoch: int
    generation: int


class CheckpointStore:
    """SQL for one schema's `checkpoints` table, used by every partition owner."""

    def __init__(self, schema: str, consumer: str) -> None:
        table = f"{quote_schema(schema)}.checkpoints"
        self.consumer = consumer
        self._claim = (
            f"INSERT INTO {table} AS c (consumer, topic, partition, epoch) VALUES ($1, $2, $3, 1)"
            " ON CONFLICT (consumer, topic, partition)"
            " DO UPDATE SET epoch = c.epoch + 1, updated_at = now()"
            " RETURNING next_offset, epoch, generation"
        )
        # The fence: only the owner holding the latest epoch and generation, continuing from
        # exactly the stored offset, may advance. It runs first in the batch transaction so the
        # row lock also serialises a concurrent claim behind this batch.
        self._advance = (
            f"UPDATE {table} SET next_offset = $6, updated_at = now()"
            " WHERE consumer = $1 AND topic = $2 AND partition = $3"
            " AND epoch = $4 AND generation = $5 AND next_offset = $7"
        )
        self._read = (
            f"SELECT next_offset, epoch, generation FROM {table}"
            " WHERE consumer = $1 AND topic = $2 AND partition = $3"
        )
        self._read_all = f"SELECT topic, partition, next_offset FROM {table} WHERE consumer = $1"

    async def claim(self, connection: asyncpg.Connection, topic: str, partition: int) -> Claim:
        row = await connection.fetchrow(self._claim, self.consumer, topic, partition)
        assert row is not None
        return Claim(row["next_offset"], row["epoch"], row["generation"])

    async def advance(
        self,
        connection: asyncpg.Connection,
        topic: str,
        partition: int,
        claim: Claim,
        next_offset: int,
    ) -> bool:
        """Move the checkpoint to `next_offset`; False when this owner has been fenced."""
        assert next_offset > claim.next_offset, "a checkpoint only moves forward"
        status: str = await connection.execute(
            self._advance,
            self.consumer,
            topic,
            partition,
            claim.epoch,
            claim.generation,
            next_offset,
            claim.next_offset,
        )
        return status == "UPDATE 1"

    async def read(
        self, connection: asyncpg.Connection, topic: str, partition: int
    ) -> Claim | None:
        row = await connection.fetchrow(self._read, self.consumer, topic, partition)
        return None if row is None else Claim(row["next_offset"], row["epoch"], row["generation"])

    async def positions(self, connection: asyncpg.Connection) -> dict[tuple[str, int], int]:
        rows = await connection.fetch(self._read_all, self.consumer)
        return {(row["topic"], row["partition"]): row["next_offset"] for row in rows}


async def claim_partition(
    pool: asyncpg.Pool,
    checkpoints: CheckpointStore,
    log_end: LogEndProbe,
    consumer: PartitionConsumer,
    topic_partition: TopicPartition,
) -> Claim:
    """Claim a partition (raising its epoch) and check the checkpoint lies within the log."""
    async with pool.acquire() as connection:
        claim = await checkpoints.claim(
            connection, topic_partition.topic, topic_partition.partition
        )
    end = (await consumer.end_offsets([topic_partition]))[topic_partition]
    if claim.next_offset > end:
        # Some brokers under-report the end (see log_end); read the last batch to be sure.
        end = (await log_end.end_offsets([topic_partition]))[topic_partition]
    beginning = (await consumer.beginning_offsets([topic_partition]))[topic_partition]
    topic, partition = topic_partition.topic, topic_partition.partition
    where = f"{checkpoints.consumer}: the checkpoint of {topic}[{partition}]"
    if claim.next_offset > end:
        raise CheckpointOutsideLogError(
            f"{where} is offset {claim.next_offset}, but the log ends at {end}. The broker lost"
            " records (the embedded broker forgets its log when it restarts). Refusing to skip:"
            " reset this environment's PostgreSQL state or restore the log."
        )
    if claim.next_offset < beginning:
        raise CheckpointOutsideLogError(
            f"{where} is offset {claim.next_offset}, but the log now begins at {beginning};"
            " records were deleted before they were applied."
        )
    return claim
