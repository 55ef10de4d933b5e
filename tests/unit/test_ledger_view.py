"""The ledger's fold and the platform's stream tracking: repeats change nothing; a gap, a
contradiction or another event reusing a sequence halts the projector."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.ledger.projections.ledger_view import ENTRIES, BalanceRow, LedgerView
from shared.contracts.ledger import EntryRecorded, EntryRejected
from shared.engine.projection import Applied, ProjectionInvariantError, StreamTracker

NOW = datetime(2026, 11, 23, tzinfo=UTC)
VIEW = LedgerView()


def recorded(sequence: int, amount: int, balance: int) -> EntryRecorded:
    return EntryRecorded(
        entry_id=uuid4(), app="healthai", owner_id="alice", operation="CREDIT_ADD",
        amount=amount, nonce=f"n{sequence}", balance=balance, sequence=sequence,
        created_on=NOW, command_id="c",
    )  # fmt: skip


def test_events_fold_into_balances_and_entries() -> None:
    first = VIEW.apply(None, recorded(1, 10, 10), Applied("e1", "0:0"))
    row = first.state
    assert isinstance(row, BalanceRow)
    assert (row.balance, row.sequence, row.position) == (10, 1, "0:0")
    assert [table for table, _ in first.appended] == [ENTRIES]
    second = VIEW.apply(row, recorded(2, -1, 9), Applied("e2", "0:1"))
    assert second.state.balance == 9


def test_a_rejection_moves_the_sequence_but_not_the_balance() -> None:
    row = VIEW.apply(None, recorded(1, 10, 10), Applied("e1", "0:0")).state
    rejected = EntryRejected(
        app="healthai", owner_id="alice", operation="CONTENT_CREATION", amount=-50, nonce="n2",
        code="insufficient_balance", detail="no", balance=10, sequence=2, rejected_on=NOW,
        command_id="c",
    )  # fmt: skip
    after = VIEW.apply(row, rejected, Applied("e2", "0:1"))
    assert after.appended == ()
    assert (after.state.balance, after.state.sequence) == (10, 2)


def test_a_wrong_balance_halts_the_fold() -> None:
    row = VIEW.apply(None, recorded(1, 10, 10), Applied("e1", "0:0")).state
    with pytest.raises(ProjectionInvariantError, match="disagrees"):
        VIEW.apply(row, recorded(2, 1, 12), Applied("e2", "0:1"))


def test_the_tracker_skips_a_repeat_of_the_same_event() -> None:
    tracker = StreamTracker()
    assert tracker.admit("healthai:alice", 1, "e1")
    assert tracker.admit("healthai:alice", 2, "e2")
    assert not tracker.admit("healthai:alice", 1, "e1")
    assert not tracker.admit("healthai:alice", 2, "e2")


def test_another_event_reusing_a_sequence_halts() -> None:
    tracker = StreamTracker()
    assert tracker.admit("healthai:alice", 1, "e1")
    with pytest.raises(ProjectionInvariantError, match="reuses sequence 1"):
        tracker.admit("healthai:alice", 1, "another")


def test_a_gap_halts() -> None:
    tracker = StreamTracker()
    assert tracker.admit("s", 1, "e1")
    with pytest.raises(ProjectionInvariantError, match="missing"):
        tracker.admit("s", 3, "e3")


def test_a_seeded_tracker_knows_what_was_applied_before() -> None:
    tracker = StreamTracker()
    tracker.seed("s", 4, "e4")
    assert not tracker.admit("s", 4, "e4")
    assert tracker.admit("s", 5, "e5")
    with pytest.raises(ProjectionInvariantError, match="reuses"):
        tracker.admit("s", 4, "other")
