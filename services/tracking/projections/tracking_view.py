"""The tracking read model as one fold over `tracking.events`: a row per user and every entry.

A year document is a query over the entries (`tracking.entries`, by user and year), so filters
apply to single entries (the seed filtered whole year documents).
"""

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from shared.contracts.tracking import TRACKING_EVENTS, EntryRegistered
from shared.engine.projection import Applied, FoldResult, ProjectionInvariantError, ProjectionSet
from shared.engine.tables import Table

POSITIONS_CHANNEL = "tracking_positions"


class UserRow(NamedTuple):
    user_id: UUID
    entry_count: int
    sequence: int
    last_entry_at: datetime
    position: str


class EntryRow(NamedTuple):
    id: UUID
    user_id: UUID
    type: str
    date: datetime
    year: int
    meta_data: str
    created_on: datetime
    sequence: int
    event_id: str
    position: str


USERS = Table(
    name="users", row=UserRow, types=("uuid", "bigint", "bigint", "timestamptz", "text"),
    key=("user_id",),
)  # fmt: skip
ENTRIES = Table(
    name="entries",
    row=EntryRow,
    types=("uuid", "uuid", "text", "timestamptz", "integer", "text", "timestamptz", "bigint",
           "text", "text"),
    key=("id",),
    until_column="created_on",
)  # fmt: skip


def meta_data_text(event: EntryRegistered) -> str:
    """`meta_data` as stored: JSON in the model's member order, the same in the live projector,
    the rebuild and the audit."""
    members = event.meta_data.model_dump(mode="json")
    return orjson.dumps(members).decode()


class TrackingView:
    state = USERS
    appended = (ENTRIES,)

    def state_key(self, event: Any) -> tuple[Any, ...] | None:
        assert isinstance(event, EntryRegistered), "tracking events only"
        return (event.user_id,)

    def apply(self, state: Any | None, event: Any, applied: Applied) -> FoldResult:
        assert isinstance(event, EntryRegistered), "tracking events only"
        assert state is None or isinstance(state, UserRow), "users hold UserRow"
        before = state.sequence if state is not None else 0
        if before != event.sequence - 1:
            raise ProjectionInvariantError(
                f"user {event.user_id}: event {applied.event_id} has sequence {event.sequence}"
                f" but the stream stands at {before}"
            )
        count = (state.entry_count if state is not None else 0) + 1
        row = UserRow(event.user_id, count, event.sequence, event.created_on, applied.position)
        entry = EntryRow(
            id=event.entry_id, user_id=event.user_id, type=event.type, date=event.date,
            year=event.year, meta_data=meta_data_text(event), created_on=event.created_on,
            sequence=event.sequence, event_id=applied.event_id, position=applied.position,
        )  # fmt: skip
        return FoldResult(row, ((ENTRIES, entry),))


def _stream_of(event: Any) -> tuple[str, int]:
    assert isinstance(event, EntryRegistered), "tracking events only"
    return f"tracking:{event.user_id}", event.sequence


def _time_of(event: Any) -> datetime:
    assert isinstance(event, EntryRegistered), "tracking events only"
    return event.created_on


TRACKING_PROJECTIONS = ProjectionSet(
    consumer="tracking-projector",
    schema="tracking",
    topic="tracking.events",
    registry=TRACKING_EVENTS,
    stream_of=_stream_of,
    time_of=_time_of,
    folds=(TrackingView(),),
    positions_channel=POSITIONS_CHANNEL,
)
