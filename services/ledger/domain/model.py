"""Deciding a RecordEntry command against one owner's account and the nonce's history.

`decide` is a pure function: the same account, prior decision and command always give the
same decision. The partition owner calls it once per command, in log order.
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
        assert self.sequence >= 0


@dataclass(frozen=True, slots=True)
class PriorDecision:
    """The first and only outcome of a nonce within its app."""

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
    command_id: str

    def same_request(self, command: RecordEntry) -> bool:
        return self.owner_id == command.owner_id and self.operation == command.operation


@dataclass(frozen=True, slots=True)
class NewDecision:
    """A fresh outcome for a nonce: exactly one event records it."""

    prior: PriorDecision
    event: EntryRecorded | EntryRejected


@dataclass(frozen=True, slots=True)
class Replay:
    """The nonce was decided before with the same request: answer that outcome again."""

    prior: PriorDecision


@dataclass(frozen=True, slots=True)
class NonceReused:
    """The nonce was decided before for a different request."""

    prior: PriorDecision


Decision = NewDecision | Replay | NonceReused


def entry_id_for(app: str, nonce: str) -> UUID:
    """Entry ids derive from (app, nonce), so one nonce can never yield two entries."""
    return uuid5(ENTRY_ID_NAMESPACE, f"{app}:{nonce}")


def decide(
    command: RecordEntry,
    *,
    account: Account,
    prior: PriorDecision | None,
    catalog: Catalog,
    command_id: str,
    now: datetime,
) -> tuple[Decision, Account]:
    """Decide one command; returns the decision and the account after it."""
    assert account.app == command.app, "the account belongs to the command's app"
    assert account.owner_id == command.owner_id, "the account belongs to the command's owner"
    if prior is not None:
        if prior.same_request(command):
            return Replay(prior), account
        return NonceReused(prior), account
    amount = catalog.amount_of(command.operation)
    assert amount is not None, "unknown operations are refused before deciding"
    sequence = account.sequence + 1
    if account.balance + amount < 0:
        return _reject(
            command, account, amount=amount, sequence=sequence, command_id=command_id, now=now
        )
    after = Account(command.app, command.owner_id, account.balance + amount, sequence)
    entry_id = entry_id_for(command.app, command.nonce)
    event = EntryRecorded(
        entry_id=entry_id,
        app=command.app,
        owner_id=command.owner_id,
        operation=command.operation,
        amount=amount,
        nonce=command.nonce,
        balance=after.balance,
        sequence=sequence,
        created_on=now,
        command_id=command_id,
    )
    prior_now = PriorDecision(
        command.app, command.nonce, command.owner_id, command.operation, amount,
        Status.RECORDED, None, None, entry_id, after.balance, sequence, now, command_id,
    )  # fmt: skip
    return NewDecision(prior_now, event), after


def _reject(
    command: RecordEntry,
    account: Account,
    *,
    amount: int,
    sequence: int,
    command_id: str,
    now: datetime,
) -> tuple[Decision, Account]:
    """Refuse an entry that would make the balance negative; the stream still records it."""
    after = Account(command.app, command.owner_id, account.balance, sequence)
    detail = (
        f"{command.operation} needs {-amount} credits but the balance of {command.owner_id!r}"
        f" in {command.app} is {account.balance}."
    )
    event = EntryRejected(
        app=command.app,
        owner_id=command.owner_id,
        operation=command.operation,
        amount=amount,
        nonce=command.nonce,
        code="insufficient_balance",
        detail=detail,
        balance=account.balance,
        sequence=sequence,
        rejected_on=now,
        command_id=command_id,
    )
    prior_now = PriorDecision(
        command.app, command.nonce, command.owner_id, command.operation, amount,
        Status.REJECTED, "insufficient_balance", detail, entry_id_for(command.app, command.nonce),
        account.balance, sequence, now, command_id,
    )  # fmt: skip
    return NewDecision(prior_now, event), after
