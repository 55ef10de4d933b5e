"""Which wallet events are transactions, and what each adds (ADR 0017).

A movement (the opening, a top-up, a transfer out or in, a refund) is one transaction for
good, keyed by its event id. A recorded transaction is keyed by its id: each version replaces
what the previous one added, and a void takes it back. Rejected transfers, refused credits and
settlements that refund nothing are not transactions.
"""

from typing import Any

from services.analytics.domain.summary import Contribution
from shared.contracts.ledger import EntryRecorded, EntryRejected
from shared.contracts.tracking import EntryRegistered
from shared.contracts.wallet import (
    TransactionAmended,
    TransactionRecorded,
    TransactionVoided,
    TransferCredited,
    TransferDebited,
    TransferSettled,
    WalletOpened,
    WalletToppedUp,
)

TransactionKey = tuple[str, str]
"""`("movement", event id)` or `("record", transaction id)`."""


def contribution_of(event: Any, event_id: str) -> tuple[TransactionKey, Contribution | None] | None:
    """The transaction an event sets (its key, and what it now adds; None takes it back), or
    None when the event is no transaction."""
    movement = _movement(event)
    if movement is not None:
        return ("movement", event_id), movement
    if isinstance(event, TransactionRecorded | TransactionAmended):
        contribution = Contribution(
            event.user_id, event.transaction_date.date(), event.transaction_type, event.amount
        )
        return ("record", str(event.transaction_id)), contribution
    if isinstance(event, TransactionVoided):
        return ("record", str(event.transaction_id)), None
    return None


def _movement(event: Any) -> Contribution | None:
    if isinstance(event, WalletOpened):
        return Contribution(event.user_id, event.opened_at.date(), "credit", event.amount)
    if isinstance(event, WalletToppedUp):
        return Contribution(event.user_id, event.topped_up_at.date(), "credit", event.amount)
    if isinstance(event, TransferDebited):
        return Contribution(event.from_user_id, event.debited_at.date(), "debit", event.amount)
    if isinstance(event, TransferCredited):
        return Contribution(event.to_user_id, event.credited_at.date(), "credit", event.amount)
    if isinstance(event, TransferSettled) and event.refunded:
        return Contribution(event.from_user_id, event.settled_at.date(), "credit", event.amount)
    return None


Counter = tuple[str, str, int]


def ledger_counters(event: EntryRecorded | EntryRejected) -> tuple[Counter, ...]:
    """Per app: entries, the credits and debits they moved, and entries per operation."""
    key = f"app:{event.app}"
    if isinstance(event, EntryRejected):
        return ((key, "rejected", 1),)
    return (
        (key, "entries", 1),
        (key, "credited", max(event.amount, 0)),
        (key, "debited", max(-event.amount, 0)),
        (key, f"operation:{event.operation}", 1),
    )


def tracking_counters(event: EntryRegistered) -> tuple[Counter, ...]:
    """Per user: entries per year and type."""
    return ((f"tracking:{event.user_id}", f"{event.year}:{event.type}", 1),)
