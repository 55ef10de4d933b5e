"""The wallet's read models as folds over `wallet.events` (ADR 0021).

- `balances`: one row per wallet, with `issued` (what the system account moved into it).
- `movements`: the history, one row per wallet an event moved money in or out of.
- `transfer_debits` and `transfer_credits`: each transfer as the sender's partition and the
  recipient's partition decided it. Every row belongs to the partition of the events that
  write it, so projector members owning different partitions never write the same row.
- `recorded_transactions`: outside transactions as they stand.

Every event's effect is zero-sum: `sum(balance) + sum(debited - refunded) - sum(credited)
- sum(issued) == 0` after any set of applied events, whatever order the partitions arrive in.
"""

from datetime import datetime
from typing import Any, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid5

from services.wallet.settings import EVENTS_TOPIC, POSITIONS_CHANNEL, PROJECTOR_NAME, SCHEMA
from shared.contracts.wallet import (
    WALLET_EVENTS,
    CreditRefused,
    TransactionAmended,
    TransactionRecorded,
    TransactionVoided,
    TransferCredited,
    TransferDebited,
    TransferRejected,
    TransferSettled,
    WalletOpened,
    WalletToppedUp,
)
from shared.engine.projection import Applied, FoldResult, ProjectionInvariantError, ProjectionSet
from shared.engine.tables import Table

MOVEMENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledgerbus.dev/wallet/movements")

WalletStreamEvent = (
    WalletOpened | WalletToppedUp | TransferDebited | TransferRejected | TransferCredited
    | TransferSettled
)  # fmt: skip
RecordEvent = TransactionRecorded | TransactionAmended | TransactionVoided


class BalanceRow(NamedTuple):
    user_id: UUID
    balance: int
    issued: int
    sequence: int
    updated_at: datetime
    position: str


class MovementRow(NamedTuple):
    movement_id: UUID
    user_id: UUID
    sequence: int
    kind: str
    direction: str
    amount: int
    balance: int
    transfer_id: UUID | None
    counterparty_user_id: UUID | None
    created_at: datetime
    event_id: str
    position: str


class TransferDebitRow(NamedTuple):
    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: int
    status: str
    code: str | None
    debited: int
    refunded: int
    note_sealed: str | None
    created_at: datetime
    updated_at: datetime
    position: str


class TransferCreditRow(NamedTuple):
    transfer_id: UUID
    to_user_id: UUID
    status: str
    reason: str | None
    credited: int
    decided_at: datetime
    position: str


class RecordedRow(NamedTuple):
    transaction_id: UUID
    user_id: UUID
    amount: int
    transaction_type: str
    transaction_date: datetime
    full_name_sealed: str | None
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    position: str


BALANCES = Table(
    "balances", BalanceRow, ("uuid", "bigint", "bigint", "bigint", "timestamptz", "text"),
    ("user_id",),
)  # fmt: skip
MOVEMENTS = Table(
    "movements", MovementRow,
    ("uuid", "uuid", "bigint", "text", "text", "bigint", "bigint", "uuid", "uuid", "timestamptz",
     "text", "text"),
    ("movement_id",), until_column="created_at",
)  # fmt: skip
TRANSFER_DEBITS = Table(
    "transfer_debits", TransferDebitRow,
    ("uuid", "uuid", "uuid", "bigint", "text", "text", "bigint", "bigint", "text", "timestamptz",
     "timestamptz", "text"),
    ("transfer_id",),
)  # fmt: skip
TRANSFER_CREDITS = Table(
    "transfer_credits", TransferCreditRow,
    ("uuid", "uuid", "text", "text", "bigint", "timestamptz", "text"), ("transfer_id",),
)  # fmt: skip
RECORDED_TRANSACTIONS = Table(
    "recorded_transactions", RecordedRow,
    ("uuid", "uuid", "bigint", "text", "timestamptz", "text", "text", "integer", "timestamptz",
     "timestamptz", "text"),
    ("transaction_id",),
)  # fmt: skip


def _owner(event: WalletStreamEvent) -> UUID:
    if isinstance(event, WalletOpened | WalletToppedUp):
        return event.user_id
    if isinstance(event, TransferCredited):
        return event.to_user_id
    return event.from_user_id


def _time(event: Any) -> datetime:
    for name in ("opened_at", "topped_up_at", "debited_at", "rejected_at", "credited_at",
                 "refused_at", "settled_at", "recorded_at", "amended_at", "voided_at"):  # fmt: skip
        value = getattr(event, name, None)
        if isinstance(value, datetime):
            return value
    raise AssertionError(f"{type(event).__name__} has no time")


def _movement(
    event: WalletStreamEvent, applied: Applied, kind: str, direction: str,
    counterparty: UUID | None,
) -> MovementRow:  # fmt: skip
    transfer_id = getattr(event, "transfer_id", None)
    amount = event.amount
    return MovementRow(
        uuid5(MOVEMENT_NAMESPACE, applied.event_id), _owner(event), event.sequence, kind,
        direction, amount, event.balance, transfer_id, counterparty, _time(event),
        applied.event_id, applied.position,
    )  # fmt: skip


class Balances:
    """Each wallet's balance and what the system account issued to it; the movement list."""

    state, appended = BALANCES, (MOVEMENTS,)

    def state_key(self, event: Any) -> tuple[Any, ...] | None:
        if isinstance(event, WalletStreamEvent):
            return (_owner(event),)
        return None

    def apply(self, state: Any | None, event: Any, applied: Applied) -> FoldResult:
        assert isinstance(event, WalletStreamEvent), type(event)
        assert state is None or isinstance(state, BalanceRow), "balances hold BalanceRow"
        before = state.balance if state is not None else 0
        issued = state.issued if state is not None else 0
        if (state.sequence if state is not None else 0) != event.sequence - 1:
            raise ProjectionInvariantError(
                f"wallet {_owner(event)}: event {applied.event_id} has sequence"
                f" {event.sequence} but the balance row stands at"
                f" {state.sequence if state else 0}"
            )
        change, kind, direction, counterparty = _change_of(event)
        if before + change != event.balance or event.balance < 0:
            raise ProjectionInvariantError(
                f"wallet {_owner(event)}: event {applied.event_id} moves {before} by {change} to"
                f" {event.balance}; the fold disagrees"
            )
        if kind in ("opening", "topup"):
            issued += change
        row = BalanceRow(
            _owner(event), event.balance, issued, event.sequence, _time(event), applied.position
        )
        if kind is None:
            return FoldResult(row)
        assert direction is not None, "a movement has a direction"
        return FoldResult(row, ((MOVEMENTS, _movement(event, applied, kind, direction,
                                                      counterparty)),))  # fmt: skip


def _change_of(event: WalletStreamEvent) -> tuple[int, str | None, str | None, UUID | None]:
    """How an event moves its wallet: the change, and the movement it lists (if any)."""
    if isinstance(event, WalletOpened):
        return event.amount, "opening", "credit", None
    if isinstance(event, WalletToppedUp):
        return event.amount, "topup", "credit", None
    if isinstance(event, TransferDebited):
        return -event.amount, "transfer", "debit", event.to_user_id
    if isinstance(event, TransferCredited):
        return event.amount, "transfer", "credit", event.from_user_id
    if isinstance(event, TransferSettled) and event.refunded:
        return event.amount, "refund", "credit", event.to_user_id
    return 0, None, None, None


class TransferDebits:
    """Each transfer as its sender's partition decided it: rejected, pending, or settled."""

    state, appended = TRANSFER_DEBITS, ()

    def state_key(self, event: Any) -> tuple[Any, ...] | None:
        if isinstance(event, TransferDebited | TransferRejected | TransferSettled):
            return (event.transfer_id,)
        return None

    def apply(self, state: Any | None, event: Any, applied: Applied) -> FoldResult:
        at = _time(event)
        if isinstance(event, TransferDebited | TransferRejected):
            if state is not None:
                raise ProjectionInvariantError(
                    f"transfer {event.transfer_id}: decided twice on the sender's partition"
                )
            rejected = isinstance(event, TransferRejected)
            note = None if rejected else getattr(event, "note_sealed", None)
            return FoldResult(TransferDebitRow(
                event.transfer_id, event.from_user_id, event.to_user_id, event.amount,
                "rejected" if rejected else "pending", "insufficient_funds" if rejected else None,
                0 if rejected else event.amount, 0, note, at, at, applied.position,
            ))  # fmt: skip
        assert isinstance(event, TransferSettled), type(event)
        if not isinstance(state, TransferDebitRow) or state.status != "pending":
            raise ProjectionInvariantError(
                f"transfer {event.transfer_id}: settled without being pending"
            )
        status = "refunded" if event.refunded else "completed"
        code = None if not event.refunded else event.outcome
        return FoldResult(state._replace(
            status=status, code=code, refunded=event.amount if event.refunded else 0,
            updated_at=at, position=applied.position,
        ))  # fmt: skip


class TransferCredits:
    """Each credit leg as its recipient's partition decided it."""

    state, appended = TRANSFER_CREDITS, ()

    def state_key(self, event: Any) -> tuple[Any, ...] | None:
        if isinstance(event, TransferCredited | CreditRefused):
            return (event.transfer_id,)
        return None

    def apply(self, state: Any | None, event: Any, applied: Applied) -> FoldResult:
        if state is not None:
            raise ProjectionInvariantError(f"transfer {event.transfer_id}: credited twice")
        if isinstance(event, TransferCredited):
            return FoldResult(TransferCreditRow(
                event.transfer_id, event.to_user_id, "credited", None, event.amount,
                event.credited_at, applied.position,
            ))  # fmt: skip
        assert isinstance(event, CreditRefused), type(event)
        return FoldResult(TransferCreditRow(
            event.transfer_id, event.to_user_id, "refused", event.reason, 0, event.refused_at,
            applied.position,
        ))  # fmt: skip


class RecordedTransactions:
    state, appended = RECORDED_TRANSACTIONS, ()

    def state_key(self, event: Any) -> tuple[Any, ...] | None:
        return (event.transaction_id,) if isinstance(event, RecordEvent) else None

    def apply(self, state: Any | None, event: Any, applied: Applied) -> FoldResult:
        at = _time(event)
        if isinstance(event, TransactionVoided):
            assert isinstance(state, RecordedRow), "a voided record was recorded first"
            return FoldResult(state._replace(
                status="voided", version=event.version, updated_at=at, position=applied.position
            ))  # fmt: skip
        assert isinstance(event, TransactionRecorded | TransactionAmended), type(event)
        created = state.created_at if isinstance(state, RecordedRow) else at
        return FoldResult(RecordedRow(
            event.transaction_id, event.user_id, event.amount, event.transaction_type,
            event.transaction_date, event.full_name_sealed, "active", event.version, created,
            at, applied.position,
        ))  # fmt: skip


SYSTEM_TOTALS_SQL = """
SELECT b.balances + d.in_flight - c.credited AS total_user_balance,
       -b.issued AS system_balance,
       d.in_flight - c.credited AS in_flight,
       b.wallets AS wallet_count
FROM (SELECT coalesce(sum(balance), 0)::bigint AS balances,
             coalesce(sum(issued), 0)::bigint AS issued, count(*) AS wallets
      FROM wallet.balances) b,
     (SELECT coalesce(sum(debited - refunded), 0)::bigint AS in_flight
      FROM wallet.transfer_debits) d,
     (SELECT coalesce(sum(credited), 0)::bigint AS credited FROM wallet.transfer_credits) c
"""
"""The system account's report in one snapshot (one statement): users' money, counted with
what is in flight, plus the system account's balance is always zero."""


def stream_of(event: Any) -> tuple[str, int]:
    if isinstance(event, WalletStreamEvent):
        return f"wallet:{_owner(event)}", event.sequence
    if isinstance(event, CreditRefused):
        return f"credit:{event.transfer_id}", 1
    assert isinstance(event, RecordEvent), type(event)
    return f"record:{event.transaction_id}", event.version


WALLET_PROJECTIONS = ProjectionSet(
    consumer=PROJECTOR_NAME,
    schema=SCHEMA,
    topic=EVENTS_TOPIC,
    registry=WALLET_EVENTS,
    stream_of=stream_of,
    time_of=_time,
    folds=(Balances(), TransferDebits(), TransferCredits(), RecordedTransactions()),
    positions_channel=POSITIONS_CHANNEL,
)
