"""The transaction summary, as increments to per-day buckets (ADR 0017).

Transactions are a user's wallet movements (the opening, top-ups, transfers out and in,
refunds) and their recorded transactions (active versions only). Each is one count on its UTC
day with a positive amount in one direction. A bucket per user and day holds the count and the
credit and debit sums: every event is a set of increments to buckets, which is what the
analytics consumer applies in Redis; a recorded transaction's amendment or void first takes
back what its previous version added, so the consumer also keeps each record's contribution.

The summary over `[since, until]` (UTC days, both inclusive) adds the buckets in range: the
average value is the total of both directions over the count, the highest day is the day with
the most transactions, the earliest on a tie.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Literal
from uuid import UUID

Direction = Literal["credit", "debit"]


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one transaction adds: one count on its day, its amount in one direction."""

    user_id: UUID
    day: date
    direction: Direction
    amount: int

    def __post_init__(self) -> None:
        assert self.amount > 0, "transaction amounts are positive"


@dataclass(frozen=True, slots=True)
class Increment:
    """One change to one bucket (`count` is +1 or -1)."""

    user_id: UUID
    day: date
    count: int
    credit: int
    debit: int


def increments(previous: Contribution | None, current: Contribution | None) -> list[Increment]:
    """The bucket changes that replace `previous` by `current` (either may be None)."""
    changes = []
    for contribution, sign in ((previous, -1), (current, 1)):
        if contribution is None:
            continue
        amount = sign * contribution.amount
        changes.append(
            Increment(
                contribution.user_id, contribution.day, sign,
                amount if contribution.direction == "credit" else 0,
                amount if contribution.direction == "debit" else 0,
            )
        )  # fmt: skip
    return changes


@dataclass(frozen=True, slots=True)
class Bucket:
    count: int = 0
    credit: int = 0
    debit: int = 0

    def plus(self, increment: Increment) -> "Bucket":
        after = Bucket(
            self.count + increment.count, self.credit + increment.credit,
            self.debit + increment.debit,
        )  # fmt: skip
        assert min(after.count, after.credit, after.debit) >= 0, "buckets never go negative"
        return after


@dataclass(frozen=True, slots=True)
class Summary:
    transaction_count: int
    credit: int
    debit: int
    average_transaction_value: Fraction
    highest_transaction_day: tuple[date, int] | None


def summarize(
    buckets: Mapping[date, Bucket], since: date | None = None, until: date | None = None
) -> Summary:
    """The summary of the days in `[since, until]` (either bound may be open)."""
    count = credit = debit = 0
    best: tuple[date, int] | None = None
    for day in sorted(buckets):
        if (since is not None and day < since) or (until is not None and day > until):
            continue
        bucket = buckets[day]
        if bucket.count == 0:
            continue
        count, credit, debit = count + bucket.count, credit + bucket.credit, debit + bucket.debit
        if best is None or bucket.count > best[1]:  # strictly more: ties keep the earlier day
            best = (day, bucket.count)
    average = Fraction(credit + debit, count) if count else Fraction(0)
    return Summary(count, credit, debit, average, best)


def fold(increments_in_order: Iterable[Increment]) -> dict[UUID, dict[date, Bucket]]:
    """Every user's buckets after the increments (what Redis holds, as plain values)."""
    users: dict[UUID, dict[date, Bucket]] = {}
    for increment in increments_in_order:
        days = users.setdefault(increment.user_id, {})
        days[increment.day] = days.get(increment.day, Bucket()).plus(increment)
    return users
