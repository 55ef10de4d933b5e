"""Recorded (outside) transactions: created, amended and voided, each change a new event.

Nothing is rewritten: an amendment is a new version of the whole record, a void is its last
version. A record belongs to one user; anyone else's id is "not found" (the contract's 404).
"""

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Recorded:
    transaction_id: UUID
    user_id: UUID
    amount: int
    transaction_type: str
    transaction_date: datetime
    full_name_sealed: str | None
    version: int
    voided: bool

    def __post_init__(self) -> None:
        assert self.amount > 0, "a recorded amount is positive"
        assert self.transaction_type in ("credit", "debit"), "credit or debit"
        assert self.version >= 1, "versions count from one"

    def same_content(self, other: "Recorded") -> bool:
        return replace(other, version=self.version, voided=self.voided) == self


@dataclass(frozen=True, slots=True)
class Changes:
    """An amendment's fields; None keeps the recorded value."""

    amount: int | None
    transaction_type: str | None
    transaction_date: datetime | None
    full_name_sealed: str | None

    def is_empty(self) -> bool:
        return all(value is None for value in (
            self.amount, self.transaction_type, self.transaction_date, self.full_name_sealed
        ))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a change to a record is refused: the code and the HTTP status it is answered with."""

    status: int
    code: str
    detail: str


NOT_FOUND = Refused(404, "transaction_not_found", "There is no such transaction for this user.")
VOIDED = Refused(409, "transaction_voided", "The transaction was voided; it cannot change.")
EXISTS = Refused(409, "transaction_exists", "A different transaction already has this id.")
NO_CHANGE = Refused(422, "nothing_to_amend", "The amendment names no field to change.")


def decide_record(known: Recorded | None, new: Recorded) -> Recorded | Refused | None:
    """The record to write; None when this exact record exists (a repeat changes nothing)."""
    if known is None:
        return new
    if known.user_id == new.user_id and known.same_content(new):
        return None
    return EXISTS if known.user_id == new.user_id else NOT_FOUND


def decide_amend(known: Recorded | None, user_id: UUID, changes: Changes) -> Recorded | Refused:
    if known is None or known.user_id != user_id:
        return NOT_FOUND
    if known.voided:
        return VOIDED
    if changes.is_empty():
        return NO_CHANGE
    return replace(
        known,
        amount=changes.amount if changes.amount is not None else known.amount,
        transaction_type=changes.transaction_type or known.transaction_type,
        transaction_date=changes.transaction_date or known.transaction_date,
        full_name_sealed=changes.full_name_sealed or known.full_name_sealed,
        version=known.version + 1,
    )


def decide_void(known: Recorded | None, user_id: UUID) -> Recorded | Refused:
    if known is None or known.user_id != user_id:
        return NOT_FOUND
    if known.voided:
        return VOIDED
    return replace(known, version=known.version + 1, voided=True)
