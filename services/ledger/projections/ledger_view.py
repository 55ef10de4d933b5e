"""The ledger read model as one fold over `ledger.events`: balances and the entry list.

`LedgerView.apply` is the one definition of how an event changes the read model; the platform
runs it in the live projector, the rebuild and the audit (see shared/engine/projection.py).
The platform admits each event once, in its stream's order; the fold still checks that every
event agrees with the balance it folds into, since a log that contradicts itself must halt.
"""

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from shared.contracts.ledger import LEDGER_EVENTS, EntryRecorded, EntryRejected, aggregate_key
from shared.engine.projection import (
    Applied,
    FoldResult,
    ProjectionInvariantError,
    ProjectionSet,
)
from shared.engine.tables import Table

POSITIONS_CHANNEL = "ledger_positions"
"""NOTIFY channel on which the projector announces each partition's new checkpoint."""

LedgerEvent = EntryRecorded | EntryRejected


class BalanceRow(NamedTuple):
    app: str
    owner_id: str
    balance: int
    last_updated: datetime
    sequence: int
    position: str


class EntryRow(NamedTuple):
    id: UUID
    app: str
    owner_id: str
    operation: str
    amount: int
    nonce: str
    created_on: datetime
    balance: int
    sequence: int
    event_id: str
    position: str


BALANCES = Table(
    name="balances",
    row=BalanceRow,
    types=("text", "text", "bigint", "timestamptz", "bigint", "text"),
    key=("app", "owner_id"),
)
ENTRIES = Table(
    name="entries",
    row=EntryRow,
    types=("uuid", "text", "text", "text", "bigint", "text", "timestamptz", "bigint", "bigint",
           "text", "text"),
    key=("id",),
    until_column="created_on",
)  # fmt: skip


class LedgerView:
    """Balances (one row per app and owner) and recorded entries."""

    state = BALANCES
    appended = (ENTRIES,)

    def state_key(self, event: Any) -> tuple[Any, ...] | None:
        assert isinstance(event, EntryRecorded | EntryRejected), "ledger events only"
        return (event.app, event.owner_id)

    def apply(self, state: Any | None, event: Any, applied: Applied) -> FoldResult:
        assert isinstance(event, EntryRecorded | EntryRejected), "ledger events only"
        assert state is None or isinstance(state, BalanceRow), "balances hold BalanceRow"
        owner = aggregate_key(event.app, event.owner_id)
        before = state.balance if state is not None else 0
        if (state.sequence if state is not None else 0) != event.sequence - 1:
            raise ProjectionInvariantError(
                f"{owner}: event {applied.event_id} has sequence {event.sequence} but the balance"
                f" row stands at {state.sequence if state else 0}"
            )
        if isinstance(event, EntryRejected):
            if event.balance != before:
                raise ProjectionInvariantError(
                    f"{owner}: rejection {applied.event_id} states another balance"
                )
            row = BalanceRow(
                event.app, event.owner_id, before, event.rejected_on, event.sequence,
                applied.position,
            )  # fmt: skip
            return FoldResult(row)
        if before + event.amount != event.balance or event.balance < 0:
            raise ProjectionInvariantError(
                f"{owner}: entry {applied.event_id} moves {before} by {event.amount} to"
                f" {event.balance}; the fold disagrees"
            )
        row = BalanceRow(
            event.app, event.owner_id, event.balance, event.created_on, event.sequence,
            applied.position,
        )  # fmt: skip
        entry = EntryRow(
            id=event.entry_id, app=event.app, owner_id=event.owner_id, operation=event.operation,
            amount=event.amount, nonce=event.nonce, created_on=event.created_on,
            balance=event.balance, sequence=event.sequence, event_id=applied.event_id,
            position=applied.position,
        )  # fmt: skip
        return FoldResult(row, ((ENTRIES, entry),))


def _stream_of(event: Any) -> tuple[str, int]:
    assert isinstance(event, EntryRecorded | EntryRejected), "ledger events only"
    return aggregate_key(event.app, event.owner_id), event.sequence


def _time_of(event: Any) -> datetime:
    assert isinstance(event, EntryRecorded | EntryRejected), "ledger events only"
    return event.created_on if isinstance(event, EntryRecorded) else event.rejected_on


LEDGER_PROJECTIONS = ProjectionSet(
    consumer="ledger-projector",
    schema="ledger",
    topic="ledger.events",
    registry=LEDGER_EVENTS,
    stream_of=_stream_of,
    time_of=_time_of,
    folds=(LedgerView(),),
    positions_channel=POSITIONS_CHANNEL,
)
