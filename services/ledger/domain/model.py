"""Deciding a RecordEntry command against one owner's account and the nonce's history.

`decide` is a pure function: the same account, prior decision and command always give the
same decision. The processor calls it once per command, in log order.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from services.ledger.domain.catalog import Catalog
from shared.contracts.ledger import EntryRecorded, EntryRejected, RecordEntry

ENTRY_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledgerbus.dev/ledger/entries")


class Status(StrEnum):
    RECORDED = "recorded"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Account:
    """Decision state of one (app, owner): the balance and the last sequence in its stream."""

    app: str
    owner_id: str
    balance: int
    sequence: int

    def __post_init__(self) -> None:
        assert self.balance >= 0, "an account balance is never negative"
        assert self.sequence >= 0, "sequences count from one; zero means no event yet"


@dataclass(frozen=True, slots=True)
class CommandIdentity:
    """Who asked: the CloudEvents `source` and `id` of the command."""

    source: str
    command_id: str


@dataclass(frozen=True, slots=True)
class NonceDecision:
    """The first and only outcome of a nonce within its app, kept for ever."""

    app: str
    nonce: str
    owner_id: str
    operation: str
    amount: int
    status: Status
    code: str | None
    detail: str | None
    entry_id: UUID
    balance: int
    sequence: int
    decided_at: datetime
    decided_by: CommandIdentity

    def same_request(self, command: RecordEntry) -> bool:
        return self.owner_id == command.owner_id and self.operation == command.operation


@dataclass(frozen=True, slots=True)
class NewDecision:
    """A fresh outcome for a nonce: exactly one event records it."""

    decision: NonceDecision
    event: EntryRecorded | EntryRejected


@dataclass(frozen=True, slots=True)
class Repeated:
    """The nonce was decided before with the same request: answer that outcome again."""

    earlier: NonceDecision


@dataclass(frozen=True, slots=True)
class NonceReused:
    """The nonce was decided before for a different request."""

    earlier: NonceDecision


Decision = NewDecision | Repeated | NonceReused


def entry_id_for(app: str, nonce: str) -> UUID:
    """Entry ids derive from (app, nonce), so one nonce can never yield two entries."""
    return uuid5(ENTRY_ID_NAMESPACE, f"{app}:{nonce}")


def decide(
    command: RecordEntry,
    *,
    account: Account,
    earlier: NonceDecision | None,
    catalog: Catalog,
    identity: CommandIdentity,
    now: datetime,
) -> tuple[Decision, Account]:
    """Decide one command; returns the decision and the account after it."""
    assert account.app == command.app, "the account belongs to the command's app"
    assert account.owner_id == command.owner_id, "the account belongs to the command's owner"
    if earlier is not None:
        if earlier.same_request(command):
            return Repeated(earlier), account
        return NonceReused(earlier), account
    amount = catalog.amount_of(command.operation)
    assert amount is not None, "unknown operations are refused before deciding"
    sequence = account.sequence + 1
    if account.balance + amount < 0:
        return _refuse(command, account, amount, sequence, identity, now)
    after = Account(command.app, command.owner_id, account.balance + amount, sequence)
    entry_id = entry_id_for(command.app, command.nonce)
    event = EntryRecorded(
        entry_id=entry_id, app=command.app, owner_id=command.owner_id,
        operation=command.operation, amount=amount, nonce=command.nonce, balance=after.balance,
        sequence=sequence, created_on=now, command_id=identity.command_id,
    )  # fmt: skip
    decision = NonceDecision(
        command.app, command.nonce, command.owner_id, command.operation, amount,
        Status.RECORDED, None, None, entry_id, after.balance, sequence, now, identity,
    )  # fmt: skip
    return NewDecision(decision, event), after


def _refuse(  # noqa: PLR0917 (the parts of one refusal, in the order they are used)
    command: RecordEntry,
    account: Account,
    amount: int,
    sequence: int,
    identity: CommandIdentity,
    now: datetime,
) -> tuple[Decision, Account]:
    """Refuse an entry that would make the balance negative; the stream still records it."""
    after = Account(command.app, command.owner_id, account.balance, sequence)
    # The sentence names nothing the caller chose but the catalog's operation: an owner id of
    # any length or script must never make the refusal itself invalid (see EntryRejected).
    detail = (
        f"{command.operation} needs {-amount} credits but the owner's balance in {command.app}"
        f" is {account.balance}."
    )
    event = EntryRejected(
        app=command.app, owner_id=command.owner_id, operation=command.operation, amount=amount,
        nonce=command.nonce, code="insufficient_balance", detail=detail,
        balance=account.balance, sequence=sequence, rejected_on=now,
        command_id=identity.command_id,
    )  # fmt: skip
    decision = NonceDecision(
        command.app, command.nonce, command.owner_id, command.operation, amount,
        Status.REJECTED, "insufficient_balance", detail, entry_id_for(command.app, command.nonce),
        account.balance, sequence, now, identity,
    )  # fmt: skip
    return NewDecision(decision, event), after
