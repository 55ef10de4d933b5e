"""The ledger read model as a pure fold over `ledger.events`.

`apply_event` is the one definition of how an event changes the read model. The live projector,
`ledgerbus projections rebuild ledger` and `ledgerbus audit` all call it, so a replay from
offset 0 produces exactly the rows the live projector wrote.

Deduplication: every event carries its aggregate's sequence. An event whose sequence is not
beyond the row's is a repeat (a retried publish can land twice) and changes nothing; a sequence
that skips ahead means an event is missing, which must never be papered over.
"""

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from shared.contracts.ledger import EntryRecorded, EntryRejected
from shared.kafka.partition_handler import HaltError


class ProjectionInvariantError(HaltError):
    """The log contradicts itself; the projector stops rather than write a wrong balance."""


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


# Rows are named tuples: cheap to build a million of, and COPY takes them as they are.
BALANCE_COLUMNS = BalanceRow._fields
ENTRY_COLUMNS = EntryRow._fields


def apply_event(
    row: BalanceRow | None,
    event: EntryRecorded | EntryRejected,
    *,
    event_id: str,
    position: str,
) -> tuple[BalanceRow, EntryRow | None] | None:
    """Fold one event into an owner's row; None when the event was applied before."""
    current_sequence = row.sequence if row is not None else 0
    if event.sequence <= current_sequence:
        return None
    owner = f"{event.app}:{event.owner_id}"
    if event.sequence != current_sequence + 1:
        raise ProjectionInvariantError(
            f"{owner}: event {event_id} has sequence {event.sequence} but the last applied is"
            f" {current_sequence}; an event is missing from the log"
        )
    balance_before = row.balance if row is not None else 0
    if isinstance(event, EntryRejected):
        if event.balance != balance_before:
            raise ProjectionInvariantError(f"{owner}: rejection {event_id} states another balance")
        updated = BalanceRow(
            event.app, event.owner_id, balance_before, event.rejected_on, event.sequence, position
        )
        return updated, None
    if balance_before + event.amount != event.balance or event.balance < 0:
        raise ProjectionInvariantError(
            f"{owner}: entry {event_id} moves {balance_before} by {event.amount} to"
            f" {event.balance}; the fold disagrees"
        )
    updated = BalanceRow(
        event.app, event.owner_id, event.balance, event.created_on, event.sequence, position
    )
    entry = EntryRow(
        id=event.entry_id,
        app=event.app,
        owner_id=event.owner_id,
        operation=event.operation,
        amount=event.amount,
        nonce=event.nonce,
        created_on=event.created_on,
        balance=event.balance,
        sequence=event.sequence,
        event_id=event_id,
        position=position,
    )
    return updated, entry
