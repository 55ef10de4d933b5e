"""The read model's fold: repeats change nothing, gaps and contradictions stop it."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.ledger.projections.ledger_view import ProjectionInvariantError, apply_event
from shared.contracts.ledger import EntryRecorded, EntryRejected

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def recorded(sequence: int, amount: int, balance: int) -> EntryRecorded:
    return EntryRecorded(
        entry_id=uuid4(),
        app="healthai",
        owner_id="alice",
        operation="CREDIT_ADD",
        amount=amount,
        nonce=f"n{sequence}",
        balance=balance,
        sequence=sequence,
        created_on=NOW,
        command_id="c",
    )


def test_events_fold_in_sequence_and_a_repeat_is_ignored() -> None:
    first = apply_event(None, recorded(1, 10, 10), event_id="e1", position="0:0")
    assert first is not None and first[1] is not None
    row = first[0]
    assert (row.balance, row.sequence, row.position) == (10, 1, "0:0")
    assert apply_event(row, recorded(1, 10, 10), event_id="e1", position="0:5") is None
    second = apply_event(row, recorded(2, -1, 9), event_id="e2", position="0:1")
    assert second is not None and second[0].balance == 9


def test_a_rejection_moves_the_sequence_but_not_the_balance() -> None:
    row = apply_event(None, recorded(1, 10, 10), event_id="e1", position="0:0")
    assert row is not None
    rejected = EntryRejected(
        app="healthai",
        owner_id="alice",
        operation="CONTENT_CREATION",
        amount=-50,
        nonce="n2",
        code="insufficient_balance",
        detail="no",
        balance=10,
        sequence=2,
        rejected_on=NOW,
        command_id="c",
    )
    after = apply_event(row[0], rejected, event_id="e2", position="0:1")
    assert after is not None and after[1] is None
    assert (after[0].balance, after[0].sequence) == (10, 2)


def test_a_missing_event_or_a_wrong_balance_halts_the_projection() -> None:
    row = apply_event(None, recorded(1, 10, 10), event_id="e1", position="0:0")
    assert row is not None
    with pytest.raises(ProjectionInvariantError, match="missing"):
        apply_event(row[0], recorded(3, 1, 11), event_id="e3", position="0:2")
    with pytest.raises(ProjectionInvariantError, match="disagrees"):
        apply_event(row[0], recorded(2, 1, 12), event_id="e2", position="0:1")
