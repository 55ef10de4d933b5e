"""Projections as platform pieces: a read model is a `Fold` over one events topic.

A service describes each read model once, as a `Fold`: the table holding one state row per key
(a balance per owner), the tables it appends to (entries), and a pure `apply`. The platform
runs the same fold in the live projector, the replay behind `projections rebuild`, the rebuild
swap and the audit, so a replay from offset 0 produces exactly the rows the live projector
wrote. Several folds of one topic run together as a `ProjectionSet` (one consumer, one
checkpoint per partition, one transaction per batch).

Every event belongs to a stream (its aggregate) at a sequence. `StreamTracker` applies an event
only as the next of its stream; a repeat of an applied event (same id: a retried send landed
twice) changes nothing, while a different event reusing a sequence, or a gap, halts the
projector: the log contradicts itself and no read model may be built from it silently.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from shared.contracts.registry import MessageRegistry
from shared.engine.partition_handler import HaltError
from shared.engine.tables import Table


class AppliedEventRow(NamedTuple):
    stream: str
    sequence: int
    event_id: str


APPLIED_EVENTS = Table(
    name="applied_events",
    row=AppliedEventRow,
    types=("text", "bigint", "text"),
    key=("stream", "sequence"),
)
"""The platform's own table in every projector schema (platform migration 0002)."""


class ProjectionInvariantError(HaltError):
    """The log contradicts itself; the projector halts rather than write a wrong read model."""


class Applied(NamedTuple):
    """Where an event came from, for the rows a fold writes."""

    event_id: str
    position: str


@dataclass(frozen=True, slots=True)
class FoldResult:
    state: Any
    """The key's state row after the event."""
    appended: Sequence[tuple[Table, Any]] = ()
    """Rows to append, each with its table."""


class Fold(Protocol):
    """One read model: pure, deterministic, the same in every runner."""

    @property
    def state(self) -> Table:
        """The table of state rows, one per key."""

    @property
    def appended(self) -> tuple[Table, ...]:
        """The tables the fold only appends to."""

    def state_key(self, event: Any) -> tuple[Any, ...] | None:
        """The key of the state row this event changes, or None when it does not concern it."""

    def apply(self, state: Any | None, event: Any, applied: Applied) -> FoldResult:
        """Fold one event into the key's row; raise `ProjectionInvariantError` if it cannot."""


@dataclass(frozen=True, slots=True)
class ProjectionSet:
    consumer: str
    """The projector's consumer name (checkpoints, consumer group)."""
    schema: str
    topic: str
    """The events topic, without prefix."""
    registry: MessageRegistry
    stream_of: Callable[[Any], tuple[str, int]]
    """An event's stream (its aggregate id) and its sequence in that stream."""
    time_of: Callable[[Any], datetime]
    """When the event happened, for an audit cut with `--until`."""
    folds: tuple[Fold, ...]
    positions_channel: str
    """NOTIFY channel on which the projector announces each partition's new checkpoint."""

    @property
    def tables(self) -> tuple[Table, ...]:
        tables = [table for fold in self.folds for table in (fold.state, *fold.appended)]
        return (*tables, APPLIED_EVENTS)


class StreamTracker:
    """Which event holds each (stream, sequence): decides apply, skip, or halt."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.ids: dict[tuple[str, int], str] = {}

    def seed(self, stream: str, sequence: int, event_id: str) -> None:
        self.ids[(stream, sequence)] = event_id
        self.last[stream] = max(sequence, self.last.get(stream, 0))

    def admit(self, stream: str, sequence: int, event_id: str) -> bool:
        """True to apply the event, False for a repeat of an applied one."""
        last = self.last.get(stream, 0)
        if sequence == last + 1:
            self.last[stream] = sequence
            self.ids[(stream, sequence)] = event_id
            return True
        if sequence > last:
            raise ProjectionInvariantError(
                f"stream {stream}: event {event_id} has sequence {sequence} but the last applied"
                f" is {last}; an event is missing from the log"
            )
        known = self.ids.get((stream, sequence))
        if known == event_id:
            return False
        raise ProjectionInvariantError(
            f"stream {stream}: event {event_id} reuses sequence {sequence}, which belongs to"
            f" event {known}; two different events claim one place in the stream"
        )
