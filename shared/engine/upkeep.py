"""What a partition owner does between batches: heartbeats, leftovers, deadlines, retries.

- Heartbeats: every 0.5 s the owner stamps the partitions it holds, so readiness checks and
  the audit can tell an owned partition from one whose owner died. They run in a task of their
  own: the other steps wait for a partition's lock, which a batch holds for its whole
  transaction (seconds, when PostgreSQL is slow or a transient error backs off), and a live
  owner must not look dead meanwhile.
- Outbox leftovers (a failed publish, a crashed predecessor) are retried when idle.
- Due deadlines are moved into the outbox and published by the owner of the partition that
  scheduled them.
- A halted partition is resumed for another try once its retry time comes.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiokafka import TopicPartition

from shared.contracts.base import utc_now
from shared.engine.deadlines import DeadlineStore
from shared.engine.failures import OwnedPartition, describe
from shared.engine.partition_owner import PartitionOwner
from shared.logs import get_logger
from shared.observability import metrics
from shared.postgres.migrations import quote_schema

UPKEEP_TICK_SECONDS = 0.25
OWNER_HEARTBEAT_INTERVAL_SECONDS = 0.5
"""Readiness treats a partition whose heartbeat is older than four of these as unowned."""
OUTBOX_SWEEP_INTERVAL_SECONDS = 1.0
DEADLINE_SWEEP_INTERVAL_SECONDS = 0.5

logger = get_logger(__name__)


class OwnerUpkeep:
    def __init__(
        self,
        owner: PartitionOwner,
        *,
        sweeps_deadlines: bool,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._owner = owner
        self._deadlines = DeadlineStore(owner.schema, owner.consumer_name)
        self._sweeps_deadlines = sweeps_deadlines
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._last_run: dict[str, float] = {}

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._beat_forever(), name="partition-owner-heartbeat"),
            asyncio.create_task(self._run_forever(), name="partition-owner-upkeep"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        owner = self._owner
        await owner.release([(tp, owned.claim) for tp, owned in owner.owned.items()])

    async def _beat_forever(self) -> None:
        while True:
            try:
                await self._heartbeat()
            except Exception as error:
                logger.warning("owner heartbeat failed", error=describe(error))
            await asyncio.sleep(OWNER_HEARTBEAT_INTERVAL_SECONDS)

    async def _run_forever(self) -> None:
        steps: list[tuple[str, float, Callable[[], Awaitable[None]]]] = [
            ("leftovers", OUTBOX_SWEEP_INTERVAL_SECONDS, self._flush_leftovers),
            ("retries", UPKEEP_TICK_SECONDS, self._retry_halted),
        ]
        if self._sweeps_deadlines:
            steps.append(("deadlines", DEADLINE_SWEEP_INTERVAL_SECONDS, self._fire_deadlines))
        while True:
            await asyncio.sleep(UPKEEP_TICK_SECONDS)
            now = time.monotonic()
            for name, interval, step in steps:
                if now - self._last_run.get(name, 0.0) < interval:
                    continue
                self._last_run[name] = now
                try:
                    await step()
                except Exception as error:
                    logger.warning("owner upkeep step failed", step=name, error=describe(error))

    async def _heartbeat(self) -> None:
        owner = self._owner
        owned = [(tp, item.claim) for tp, item in owner.owned.items()]
        async with owner.pool.acquire() as connection:
            await owner.checkpoints.heartbeat(connection, owned, owner.identity)
        metrics.PARTITIONS_HALTED.labels(owner.consumer_name).set(
            sum(1 for item in owner.owned.values() if item.halt is not None)
        )

    async def _flush_leftovers(self) -> None:
        owner = self._owner
        for topic_partition, owned in list(owner.owned.items()):
            if not owned.outbox_pending or owned.lock.locked() or owned.paused:
                continue
            async with owned.lock:
                # The partition may have been revoked while this waited for the lock: only its
                # current owner publishes its leftovers.
                if owner.owned.get(topic_partition) is owned:
                    await owner.flush_outbox(topic_partition, owned)

    def _retry_halted_now(self, topic_partition: TopicPartition, owned: OwnedPartition) -> None:
        consumer = self._owner.consumer
        assert consumer is not None, "a partition is owned only after an assignment"
        owned.retrying = True
        consumer.seek(topic_partition, owned.claim.next_offset)
        consumer.resume(topic_partition)
        logger.warning(
            "retrying a halted partition", topic=topic_partition.topic,
            partition=topic_partition.partition, halted_times=owned.halt.times if owned.halt else 0,
        )  # fmt: skip

    async def _retry_halted(self) -> None:
        now = time.monotonic()
        for topic_partition, owned in list(self._owner.owned.items()):
            if owned.paused and owned.halt is not None and owned.halt.retry_at <= now:
                self._retry_halted_now(topic_partition, owned)

    async def _fire_deadlines(self) -> None:
        owner = self._owner
        now = self._clock()
        async with owner.pool.acquire() as connection:
            rows = await connection.fetch(
                f"SELECT DISTINCT source_topic, source_partition FROM"
                f" {quote_schema(owner.schema)}.deadlines WHERE consumer = $1 AND due_at <= $2",
                owner.consumer_name,
                now,
            )
        for row in rows:
            topic_partition = TopicPartition(row["source_topic"], row["source_partition"])
            owned = owner.owned.get(topic_partition)
            if owned is not None and not owned.paused:
                await self._fire_due(topic_partition, owned, now)

    async def _fire_due(
        self, topic_partition: TopicPartition, owned: OwnedPartition, now: datetime
    ) -> None:
        owner = self._owner
        async with owned.lock:
            if owner.owned.get(topic_partition) is not owned:
                return
            owned.outbox_pending = True
            async with owner.pool.acquire() as connection, connection.transaction():
                if not await owner.checkpoints.lock_if_owned(
                    connection, topic_partition.topic, topic_partition.partition, owned.claim
                ):
                    return
                due = await self._deadlines.take_due(
                    connection, topic_partition.topic, topic_partition.partition, now
                )
                stored = await owner.outbox.add(
                    connection, topic_partition.topic, topic_partition.partition, due
                )
            metrics.DEADLINES_FIRED.labels(owner.consumer_name).inc(len(stored))
            if stored:
                await owner.publish_stored(stored)
            owned.outbox_pending = False
