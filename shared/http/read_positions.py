"""`min_position` on a read: wait (up to 5 s) until the read model has applied a position.

Shared by every service's read routes. A position names partitions of the service's events
topic; one that was never written is refused at once (422), one not reached in time is 504.
"""

from dataclasses import dataclass

from shared.http.errors import DomainHTTPError
from shared.kafka.lag import LagReader
from shared.kafka.positions import PositionError, never_written, parse_position, reached
from shared.waiters import READ_WAIT_TIMEOUT_SECONDS, CheckpointWatcher

NOT_CAUGHT_UP_RETRY_AFTER_SECONDS = 1


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
        ends = await self.lag.end_offsets(self.topic)
        beyond = never_written(wanted, ends, self.checkpoints.known)
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
