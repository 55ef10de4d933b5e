"""Each event of the three topics as the aggregate script applies it: its stream and sequence
(so a repeat is skipped), and what it adds (ADR 0017). Streams are named as the services'
projections name them, from the events alone; nothing here imports another service.
"""

from typing import Any

from services.analytics.adapters.redis_aggregates import AggregateEvent
from services.analytics.domain.facts import contribution_of, ledger_counters, tracking_counters
from shared.contracts.ledger import EntryRecorded, EntryRejected
from shared.contracts.tracking import EntryRegistered
from shared.contracts.wallet import (
    TransactionAmended,
    TransactionRecorded,
    TransactionVoided,
    TransferCredited,
    TransferDebited,
    TransferRejected,
    TransferSettled,
    WalletEvent,
    WalletOpened,
    WalletToppedUp,
)


def _wallet_owner(event: WalletEvent) -> str:
    """Whose wallet stream the event belongs to (as the wallet's projection names it)."""
    if isinstance(event, WalletOpened | WalletToppedUp):
        return str(event.user_id)
    if isinstance(event, TransferCredited):
        return str(event.to_user_id)
    assert isinstance(event, TransferDebited | TransferRejected | TransferSettled), type(event)
    return str(event.from_user_id)


def aggregate_event(event: Any, event_id: str) -> AggregateEvent | None:
    """What an event changes in the aggregates, or None when it changes nothing."""
    if isinstance(event, EntryRecorded | EntryRejected):
        return AggregateEvent(
            f"ledger:{event.app}:{event.owner_id}", event.sequence, "counters", "", None,
            ledger_counters(event),
        )  # fmt: skip
    if isinstance(event, EntryRegistered):
        return AggregateEvent(
            f"tracking:{event.user_id}", event.sequence, "counters", "", None,
            tracking_counters(event),
        )  # fmt: skip
    found = contribution_of(event, event_id)
    if found is None:
        return None
    (kind, key), contribution = found
    if isinstance(event, TransactionRecorded | TransactionAmended | TransactionVoided):
        return AggregateEvent(
            f"record:{event.transaction_id}", event.version, kind, key, contribution
        )
    assert isinstance(event, WalletEvent), type(event)
    return AggregateEvent(f"wallet:{_wallet_owner(event)}", event.sequence, kind, key, contribution)
