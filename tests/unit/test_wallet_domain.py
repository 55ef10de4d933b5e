"""The wallet's pure rules: who decides a credit leg, refunds past the cap, and the audit's check
that each transfer's money went one way."""

import uuid
from datetime import UTC, datetime

import pytest

from services.wallet.domain.model import (
    WALLET_BALANCE_MAX_PAISA,
    CreditStatus,
    Decided,
    Origin,
    Refuse,
    Transfer,
    TransferStatus,
    Wallet,
    decide_credit,
    decide_settlement,
    decide_top_up,
)
from services.wallet.projections.audit import check_each_transfer
from services.wallet.projections.wallet_view import TransferCreditRow, TransferDebitRow
from shared.engine.audit_report import AuditReport

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def wallet(balance: int) -> Wallet:
    return Wallet(uuid.uuid4(), balance, 1, NOW)


@pytest.mark.parametrize(
    ("reason", "status"),
    [("expired", CreditStatus.CANCELLED), ("unreadable", CreditStatus.CANCELLED)],
)
def test_a_cancel_decides_the_leg_when_it_comes_first(reason: str, status: CreditStatus) -> None:
    decision = decide_credit(10, recipient=wallet(0), known=None, cancel=reason)  # type: ignore[arg-type]
    assert isinstance(decision, Refuse)
    assert (decision.reason, decision.status) == (reason, status)
    # A readable copy arriving later (a redriven dead letter) finds the leg decided.
    later = decide_credit(10, recipient=wallet(0), known=decision.status, cancel=None)
    assert later == Decided(CreditStatus.CANCELLED)


def test_a_missing_wallet_refuses_the_credit() -> None:
    decision = decide_credit(10, recipient=None, known=None, cancel=None)
    assert isinstance(decision, Refuse)
    assert decision.status is CreditStatus.REFUSED


def test_a_refund_is_never_refused_even_past_the_cap() -> None:
    """Found by review: a refund that took the sender past the cap failed an assertion and
    halted the partition. Credits and top-ups stay capped."""
    sender = wallet(WALLET_BALANCE_MAX_PAISA)
    assert decide_top_up(sender, 1) is None
    transfer = Transfer(
        uuid.uuid4(), sender.user_id, uuid.uuid4(), 1, "0" * 64, TransferStatus.PENDING,
        Origin("tests", "1"), NOW,
    )  # fmt: skip
    settled = decide_settlement(transfer, sender, "expired", NOW)
    assert settled is not None and settled.refunded
    assert settled.wallet.balance == WALLET_BALANCE_MAX_PAISA + 1


def debit_row(transfer_id: uuid.UUID, status: str, refunded: int) -> TransferDebitRow:
    user = uuid.uuid4()
    return TransferDebitRow(
        transfer_id, user, uuid.uuid4(), 10, status, None, 10, refunded, None, NOW, NOW, "0:1"
    )


def credit_row(transfer_id: uuid.UUID, credited: int) -> TransferCreditRow:
    return TransferCreditRow(transfer_id, uuid.uuid4(), "credited", None, credited, NOW, "1:1")


def test_the_audit_names_a_transfer_both_credited_and_refunded() -> None:
    """Found by review: such a transfer nets to zero in the sums (its in-flight amount is
    negative), so only a check per transfer sees it."""
    both, credited, refunded, pending = (uuid.uuid4() for _ in range(4))
    debits = {
        (both,): debit_row(both, "refunded", 10),
        (credited,): debit_row(credited, "completed", 0),
        (refunded,): debit_row(refunded, "refunded", 10),
        (pending,): debit_row(pending, "pending", 0),
    }
    credits = {(both,): credit_row(both, 10), (credited,): credit_row(credited, 10)}
    report = AuditReport("wallet")
    check_each_transfer(report, debits, credits)
    assert len(report.violations) == 1 and str(both) in report.violations[0]
