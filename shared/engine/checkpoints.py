"""Partition checkpoints in PostgreSQL: claim on assignment, advance with a fence per batch,
and the owner's liveness (heartbeats) and halts, visible to readiness checks and the audit."""

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition

from shared.engine.partition_handler import CheckpointOutsideLogError, PartitionConsumer
from shared.kafka.log_end import LogEndProbe
from shared.postgres.migrations import quote_schema

HALT_REASON_MAX_CHARACTERS = 2_000


@dataclass(frozen=True, slots=True)
class Claim:
    next_offset: int
    epoch: int
    generation: int


class CheckpointStore:
    """SQL for one schema's `checkpoints` table, used by every partition owner."""

    def __init__(self, schema: str, consumer: str) -> None:
        table = f"{quote_schema(schema)}.checkpoints"
        owners = f"{quote_schema(schema)}.partition_owners"
        self.consumer = consumer
        self._claim = (
            f"INSERT INTO {table} AS c (consumer, topic, partition, epoch)"
            " VALUES ($1, $2, $3, 1) ON CONFLICT (consumer, topic, partition)"
            " DO UPDATE SET epoch = c.epoch + 1, updated_at = now()"
            " RETURNING next_offset, epoch, generation"
        )
        # The fence: only the owner holding the latest epoch and generation, continuing from
        # exactly the stored offset, may advance. It runs first in the batch transaction so the
        # row lock also serialises a concurrent claim behind this batch. A successful advance
        # also clears a halt: the records that halted the partition went through.
        self._advance = (
            f"UPDATE {table} SET next_offset = $6, updated_at = now(), advanced_at = now(),"
            " halted_reason = NULL, halted_at = NULL"
            " WHERE consumer = $1 AND topic = $2 AND partition = $3"
            " AND epoch = $4 AND generation = $5 AND next_offset = $7"
        )
        self._read = (
            f"SELECT next_offset, epoch, generation FROM {table}"
            " WHERE consumer = $1 AND topic = $2 AND partition = $3"
        )
        self._read_all = f"SELECT topic, partition, next_offset FROM {table} WHERE consumer = $1"
        self._heartbeat = (
            f"INSERT INTO {owners} AS o (consumer, topic, partition, epoch, owner, heartbeat_at)"
            " SELECT $1, u.topic, u.partition, u.epoch, $5, now() FROM unnest($2::text[],"
            " $3::integer[], $4::bigint[]) AS u(topic, partition, epoch)"
            " ON CONFLICT (consumer, topic, partition) DO UPDATE SET epoch = EXCLUDED.epoch,"
            " owner = EXCLUDED.owner, heartbeat_at = now() WHERE o.epoch <= EXCLUDED.epoch"
        )
        self._release = (
            f"DELETE FROM {owners} o USING unnest($2::text[], $3::integer[], $4::bigint[])"
            " AS u(topic, partition, epoch) WHERE o.consumer = $1 AND o.topic = u.topic"
            " AND o.partition = u.partition AND o.epoch = u.epoch"
        )
        self._halt = (
            f"UPDATE {table} SET halted_reason = $5, halted_at = coalesce(halted_at, now())"
            " WHERE consumer = $1 AND topic = $2 AND partition = $3 AND epoch = $4"
        )
        self._lock_owned = (
            f"SELECT 1 FROM {table} WHERE consumer = $1 AND topic = $2 AND partition = $3"
            " AND epoch = $4 AND generation = $5 FOR UPDATE"
        )

    async def claim(
        self, connection: asyncpg.Connection, topic: str, partition: int, owner: str
    ) -> Claim:
        async with connection.transaction():
            row = await connection.fetchrow(self._claim, self.consumer, topic, partition)
            assert row is not None
            claim = Claim(row["next_offset"], row["epoch"], row["generation"])
            await connection.execute(
                self._heartbeat, self.consumer, [topic], [partition], [claim.epoch], owner
            )
        return claim

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

    async def lock_if_owned(
        self, connection: asyncpg.Connection, topic: str, partition: int, claim: Claim
    ) -> bool:
        """Inside a transaction: hold the checkpoint row while this owner's claim still stands
        (work outside a batch, such as publishing due deadlines, fences on it)."""
        row = await connection.fetchrow(
            self._lock_owned, self.consumer, topic, partition, claim.epoch, claim.generation
        )
        return row is not None

    async def read(
        self, connection: asyncpg.Connection, topic: str, partition: int
    ) -> Claim | None:
        row = await connection.fetchrow(self._read, self.consumer, topic, partition)
        return None if row is None else Claim(row["next_offset"], row["epoch"], row["generation"])

    async def positions(self, connection: asyncpg.Connection) -> dict[tuple[str, int], int]:
        rows = await connection.fetch(self._read_all, self.consumer)
        return {(row["topic"], row["partition"]): row["next_offset"] for row in rows}

    async def heartbeat(
        self,
        connection: asyncpg.Connection,
        owned: Sequence[tuple[TopicPartition, Claim]],
        owner: str,
    ) -> None:
        """Say this owner is alive for every partition it holds (one statement)."""
        if owned:
            await connection.execute(self._heartbeat, self.consumer, *_owned_columns(owned), owner)

    async def release(
        self, connection: asyncpg.Connection, owned: Sequence[tuple[TopicPartition, Claim]]
    ) -> None:
        """A graceful stop or revocation: the partitions are free, not orphaned."""
        if owned:
            await connection.execute(self._release, self.consumer, *_owned_columns(owned))

    async def record_halt(
        self,
        connection: asyncpg.Connection,
        topic_partition: TopicPartition,
        claim: Claim,
        reason: str,
    ) -> None:
        await connection.execute(
            self._halt,
            self.consumer,
            topic_partition.topic,
            topic_partition.partition,
            claim.epoch,
            reason[:HALT_REASON_MAX_CHARACTERS],
        )


def _owned_columns(
    owned: Sequence[tuple[TopicPartition, Claim]],
) -> tuple[list[str], list[int], list[int]]:
    return (
        [topic_partition.topic for topic_partition, _ in owned],
        [topic_partition.partition for topic_partition, _ in owned],
        [claim.epoch for _, claim in owned],
    )


async def claim_partition(  # noqa: PLR0917 (each argument is a different resource)
    pool: asyncpg.Pool,
    checkpoints: CheckpointStore,
    log_end: LogEndProbe,
    consumer: PartitionConsumer,
    topic_partition: TopicPartition,
    owner: str,
) -> Claim:
    """Claim a partition (raising its epoch) and check the checkpoint lies within the log."""
    async with pool.acquire() as connection:
        claim = await checkpoints.claim(
            connection, topic_partition.topic, topic_partition.partition, owner
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
