"""The tracking rules, pure: what an entry records, and which entry earns the daily reward.

An entry's id follows from the command that registered it, so a redelivered or retried command
is the same entry. The reward is keyed by user and UTC day of registration (ADR 0022): its
nonce is the same whoever sends it and however often, and the ledger keeps one outcome per
nonce.
"""

from datetime import date, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from shared.contracts.tracking import EntryRegistered, RegisterEntry

ENTRY_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledgerbus.dev/tracking/entries")
REWARD_NONCE_PREFIX = "daily-reward"


def entry_id_for(source: str, command_id: str, user_id: UUID) -> UUID:
    """The entry a command registers: one per CloudEvents identity (source and id) and user,
    so a producer that reuses an id for two users (decided at once on two partitions) still
    makes two entries, never two events for one entry id (found by review)."""
    return uuid5(ENTRY_NAMESPACE, f"{source}\n{command_id}\n{user_id}")


def register(
    command: RegisterEntry, *, entry_id: UUID, sequence: int, now: datetime, command_id: str
) -> EntryRegistered:
    """The event of a new entry: dated as asked, or now; `sequence` is its place in the
    user's stream."""
    assert sequence >= 1, "a stream counts from one"
    when = command.date if command.date is not None else now
    return EntryRegistered(
        entry_id=entry_id, user_id=command.user_id, type=command.type, date=when,
        year=when.year, meta_data=command.meta_data, created_on=now, sequence=sequence,
        command_id=command_id,
    )  # fmt: skip


def reward_day(event: EntryRegistered) -> date:
    """The UTC day an entry counts for: the day it was registered, not its (client's) date."""
    return event.created_on.date()


def reward_nonce(user_id: UUID, day: date) -> str:
    return f"{REWARD_NONCE_PREFIX}:{user_id}:{day.isoformat()}"
