"""A partition owner driven by a real aiokafka consumer, without a consumer group.

The consumer is assigned the partitions by hand (as a group would assign them) and each fetched
batch goes to `PartitionOwner.process`, exactly as the FastStream subscriber does in a worker;
the owner seeks, pauses and resumes this consumer. No group means no rebalances: a test decides
which owner holds which partition.
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.engine.partition_owner import PartitionOwner
from shared.engine.upkeep import OwnerUpkeep

FETCH_TIMEOUT_MILLISECONDS = 100
DRIVE_TIMEOUT_SECONDS = 30.0


@dataclass
class DrivenOwner:
    owner: PartitionOwner
    consumer: AIOKafkaConsumer
    upkeep: OwnerUpkeep | None = None
    batches: int = field(default=0)

    async def take(self, partitions: list[TopicPartition]) -> None:
        self.consumer.assign(partitions)
        await self.owner.on_assigned(self.consumer, partitions)

    async def poll_once(self) -> int:
        fetched = await self.consumer.getmany(timeout_ms=FETCH_TIMEOUT_MILLISECONDS)
        records = [record for batch in fetched.values() for record in batch]
        if records:
            self.batches += 1
            await self.owner.process(self.consumer, records)
        return len(records)

    async def drive_until(
        self, done: Callable[[], bool], timeout_seconds: float = DRIVE_TIMEOUT_SECONDS
    ) -> None:
        """Fetch and process until `done()`; fail at the deadline."""
        deadline = time.monotonic() + timeout_seconds
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"not done within {timeout_seconds:g} s")
            await self.poll_once()
            await asyncio.sleep(0)

    async def stop(self) -> None:
        if self.upkeep is not None:
            await self.upkeep.stop()
        await self.consumer.stop()


async def driven(owner: PartitionOwner, bootstrap: str, *, upkeep: bool = False) -> DrivenOwner:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=f"driven-{uuid.uuid4().hex[:8]}",  # commits need one; assignment stays manual
    )
    await consumer.start()
    keeper = None
    if upkeep:
        keeper = OwnerUpkeep(owner, sweeps_deadlines=True)
        keeper.start()
    return DrivenOwner(owner, consumer, keeper)
