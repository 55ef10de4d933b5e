"""Which events change the analytics aggregates, under which stream and sequence (the
dedupe key), and with what: the mapping the analytics consumer applies (ADR 0017)."""

import uuid
from datetime import UTC, date, datetime

from services.analytics.adapters.log_events import aggregate_event
from services.analytics.domain.summary import Contribution
from shared.contracts.ledger import EntryRecorded
from shared.contracts.tracking import EntryRegistered, SleepData
from shared.contracts.wallet import (
    TransactionRecorded,
    TransactionVoided,
    TransferDebited,
    TransferRejected,
    WalletOpened,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ALICE, BOB = uuid.UUID(int=1), uuid.UUID(int=2)


def test_wallet_movements_and_records_become_contributions() -> None:
    opened = WalletOpened(
        user_id=ALICE, amount=500_000, name_sealed="v1.x", email_sealed="v1.x",
        opened_at=NOW, balance=500_000, sequence=1,
    )  # fmt: skip
    applied = aggregate_event(opened, "e1")
    assert applied is not None
    assert (applied.stream, applied.sequence, applied.kind) == (f"wallet:{ALICE}", 1, "movement")
    assert applied.contribution == Contribution(ALICE, date(2026, 11, 23), "credit", 500_000)
    debited = TransferDebited(
        transfer_id=uuid.uuid4(), from_user_id=ALICE, to_user_id=BOB, amount=70,
        debited_at=NOW, balance=499_930, sequence=2,
    )  # fmt: skip
    applied = aggregate_event(debited, "e2")
    assert applied is not None and applied.contribution is not None
    assert (applied.stream, applied.contribution.direction) == (f"wallet:{ALICE}", "debit")
    rejected = TransferRejected(
        transfer_id=uuid.uuid4(), from_user_id=ALICE, to_user_id=BOB, amount=10**9,
        code="insufficient_funds", rejected_at=NOW, balance=499_930, sequence=3,
    )  # fmt: skip
    assert aggregate_event(rejected, "e3") is None
    record = uuid.uuid4()
    recorded = TransactionRecorded(
        transaction_id=record, user_id=ALICE, amount=40, transaction_type="credit",
        transaction_date=NOW, version=1, recorded_at=NOW,
    )  # fmt: skip
    applied = aggregate_event(recorded, "e4")
    assert applied is not None
    assert (applied.stream, applied.sequence, applied.key) == (f"record:{record}", 1, str(record))
    voided = aggregate_event(
        TransactionVoided(transaction_id=record, user_id=ALICE, version=2, voided_at=NOW), "e5"
    )
    assert voided is not None and (voided.kind, voided.contribution) == ("record", None)


def test_ledger_and_tracking_events_become_counters() -> None:
    entry = EntryRecorded(
        entry_id=uuid.uuid4(), app="healthai", owner_id="alice", operation="CREDIT_SPEND",
        amount=-1, nonce="n1", balance=9, sequence=4, created_on=NOW, command_id="c1",
    )  # fmt: skip
    applied = aggregate_event(entry, "e6")
    assert applied is not None
    assert (applied.stream, applied.sequence) == ("ledger:healthai:alice", 4)
    assert ("app:healthai", "debited", 1) in applied.counters
    assert ("app:healthai", "operation:CREDIT_SPEND", 1) in applied.counters
    registered = EntryRegistered(
        entry_id=uuid.uuid4(), user_id=ALICE, type="sleep", date=NOW, year=2026,
        meta_data=SleepData(hours=7), created_on=NOW, sequence=2, command_id="c2",
    )  # fmt: skip
    applied = aggregate_event(registered, "e7")
    assert applied is not None
    assert applied.counters == ((f"tracking:{ALICE}", "2026:sleep", 1),)
