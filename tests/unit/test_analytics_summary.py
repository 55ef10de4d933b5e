"""The summary kept as increments equals a brute-force computation over the same transactions
(issue 7): random streams of movements and recorded transactions (recorded, amended, voided),
any date range, ties on the highest day going to the earliest date."""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.domain.summary import (
    Contribution,
    Summary,
    fold,
    increments,
    summarize,
)

USERS = [uuid.UUID(int=index + 1) for index in range(3)]
FIRST_DAY = date(2026, 11, 1)
DAYS = 12


@dataclass(frozen=True)
class Operation:
    key: tuple[str, str]
    contribution: Contribution | None


contributions = st.builds(
    Contribution,
    st.sampled_from(USERS),
    st.integers(0, DAYS - 1).map(lambda offset: FIRST_DAY + timedelta(days=offset)),
    st.sampled_from(["credit", "debit"]),
    st.integers(1, 10**12),
)
movements = st.builds(Operation, st.uuids().map(lambda key: ("movement", str(key))), contributions)
records = st.builds(
    Operation,
    st.integers(0, 5).map(lambda key: ("record", str(key))),
    st.one_of(st.none(), contributions),  # None: a void
)
bounds = st.one_of(
    st.none(), st.integers(-1, DAYS).map(lambda offset: FIRST_DAY + timedelta(days=offset))
)


def brute_force(active: list[Contribution], since: date | None, until: date | None) -> Summary:
    chosen = [
        c for c in active
        if (since is None or c.day >= since) and (until is None or c.day <= until)
    ]  # fmt: skip
    credit = sum(c.amount for c in chosen if c.direction == "credit")
    debit = sum(c.amount for c in chosen if c.direction == "debit")
    per_day: dict[date, int] = {}
    for c in chosen:
        per_day[c.day] = per_day.get(c.day, 0) + 1
    highest = max(per_day.values(), default=0)
    best = min((day for day, n in per_day.items() if n == highest), default=None)
    average = Fraction(credit + debit, len(chosen)) if chosen else Fraction(0)
    return Summary(len(chosen), credit, debit, average, (best, highest) if best else None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(movements, records), max_size=60), bounds, bounds)
def test_incremental_buckets_answer_what_brute_force_computes(
    operations: list[Operation], since: date | None, until: date | None
) -> None:
    current: dict[tuple[str, str], Contribution | None] = {}
    changes = []
    for operation in operations:
        if (
            operation.key[0] == "record"
            and operation.key not in current
            and operation.contribution is None
        ):
            continue  # a void of a record never recorded is not in any log
        changes += increments(current.get(operation.key), operation.contribution)
        current[operation.key] = operation.contribution
    buckets = fold(changes)
    active = [c for c in current.values() if c is not None]
    for user in USERS:
        mine = [c for c in active if c.user_id == user]
        assert summarize(buckets.get(user, {}), since, until) == brute_force(mine, since, until)


def test_a_tie_goes_to_the_earliest_day_and_nothing_is_null() -> None:
    user = USERS[0]
    later, earlier = date(2026, 11, 5), date(2026, 11, 2)
    changes = []
    for day in (later, later, earlier, earlier):
        changes += increments(None, Contribution(user, day, "credit", 100))
    summary = summarize(fold(changes)[user])
    assert summary.highest_transaction_day == (earlier, 2)
    assert summary.average_transaction_value == 100
    empty = summarize({})
    assert (empty.transaction_count, empty.highest_transaction_day) == (0, None)
