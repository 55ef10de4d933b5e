"""`min_position` on a read: wait (up to 5 s) until the read model has applied a position.

Shared by every service's read routes. A position names partitions of the service's events
topic; one that was never written is refused at once (422), one not reached in time is 504.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from shared.http.errors import DomainHTTPError
from shared.kafka.lag import LagReader
from shared.kafka.positions import PositionError, never_written, parse_position, reached
from shared.waiters import READ_WAIT_TIMEOUT_SECONDS, CheckpointWatcher

NOT_CAUGHT_UP_RETRY_AFTER_SECONDS = 1
NEVER_WRITTEN_CONFIRMATIONS = 3
NEVER_WRITTEN_RECHECK_SECONDS = 0.05
"""A position past the log end is read again this often before it is refused: on the embedded
broker an end read right after a write can still miss the write's batch (a probe saw a
position a write had just answered refused as never written)."""


async def never_written_confirmed(
    lag: LagReader, topic: str, wanted: Mapping[int, int], known: Mapping[int, int]
) -> tuple[list[int], dict[int, int]]:
    """The partitions whose wanted offset is past the log end, on several readings of it, and
    the last ends read (empty when every partition was found written)."""
    ends = await lag.end_offsets(topic)
    beyond = never_written(wanted, ends, known)
    for _ in range(NEVER_WRITTEN_CONFIRMATIONS):
        if not beyond:
            break
        await asyncio.sleep(NEVER_WRITTEN_RECHECK_SECONDS)
        ends = await lag.end_offsets(topic)
        beyond = never_written(wanted, ends, known)
    return beyond, ends


@dataclass(frozen=True, slots=True)
class ReadPositions:
    """One read model's progress through its events topic."""

    label: str
    """How answers name the read model ("the ledger read model")."""
    checkpoints: CheckpointWatcher
    lag: LagReader
    topic: str
    """The events topic, prefixed."""
    topic_name: str
    """The events topic as users know it (`ledger.events`)."""
    partitions: int

    async def wait_for(self, min_position: str | None) -> None:
        """Return once the read model reached `min_position` (or at once without one)."""
        if min_position is None:
            return
        try:
            wanted = parse_position(min_position)
        except PositionError as error:
            raise DomainHTTPError(422, "invalid_position", str(error)) from error
        unknown = sorted(p for p in wanted if p >= self.partitions)
        if unknown:
            raise DomainHTTPError(
                422, "invalid_position",
                f"{self.topic_name} has {self.partitions} partitions; there is no partition"
                f" {unknown[0]}.",
            )  # fmt: skip
        if reached(self.checkpoints.known, wanted):
            return
        beyond, ends = await never_written_confirmed(
            self.lag, self.topic, wanted, self.checkpoints.known
        )
        if beyond:
            raise DomainHTTPError(
                422, "invalid_position",
                f"{min_position} was never written: partition {beyond[0]} of {self.topic_name}"
                f" ends at offset {ends.get(beyond[0], 0)}.",
            )  # fmt: skip
        if not await self.checkpoints.wait_for(wanted, READ_WAIT_TIMEOUT_SECONDS):
            raise DomainHTTPError(
                504, "not_caught_up",
                f"The {self.label} did not reach {min_position} within"
                f" {READ_WAIT_TIMEOUT_SECONDS:g} s; retry shortly.",
                headers={"Retry-After": str(NOT_CAUGHT_UP_RETRY_AFTER_SECONDS)},
            )  # fmt: skip
