"""The wallet's decisions, as pure functions of the state a partition keeps and a command.

Every money decision happens on the partition that owns the wallet it changes: the debit on
the sender's, the credit on the recipient's (ADR 0021). These functions never read a clock or
a database; the handlers give them the state and `now`, and write what they return.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from shared.contracts.wallet import CancelReason, RefusalReason, SettleOutcome

WALLET_BALANCE_MAX_PAISA = 10**15
"""No credit or top-up may take a wallet past this (10 trillion taka). A refund may: it returns
money the wallet held, and refusing it would park that money for ever (found by review)."""
WALLET_BALANCE_STORAGE_MAX_PAISA = 2**62
"""What a balance can never reach: a bigint column, with room for any sum of a few of them.
Past the cap only by refunds of transfers pending at once, each at most 10^12."""


class TransferStatus(StrEnum):
    REJECTED = "rejected"
    PENDING = "pending"
    CANCELLING = "cancelling"
    """The deadline passed and the recipient's partition was asked to cancel the credit."""
    COMPLETED = "completed"
    REFUNDED = "refunded"

    @property
    def final(self) -> bool:
        return self in (TransferStatus.REJECTED, TransferStatus.COMPLETED, TransferStatus.REFUNDED)


class CreditStatus(StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Wallet:
    user_id: UUID
    balance: int
    sequence: int
    opened_at: datetime

    def __post_init__(self) -> None:
        assert 0 <= self.balance < WALLET_BALANCE_STORAGE_MAX_PAISA, "a balance fits its column"
        assert self.sequence >= 1, "an open wallet has at least its opening event"

    def moved(self, by: int) -> "Wallet":
        """The wallet after one more event of its stream, its balance moved by `by`."""
        return replace(self, balance=self.balance + by, sequence=self.sequence + 1)


@dataclass(frozen=True, slots=True)
class Origin:
    """The command a transfer's final answer goes to (the gateway's request)."""

    source: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer as its sender's partition keeps it."""

    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: int
    request_hash: str
    status: TransferStatus
    origin: Origin
    created_at: datetime
    settled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TransferRequest:
    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: int
    request_hash: str


# What deciding a transfer request can give.
@dataclass(frozen=True, slots=True)
class Debit:
    """The sender pays: the wallet after the debit and the new pending transfer."""

    wallet: Wallet
    transfer: Transfer


@dataclass(frozen=True, slots=True)
class Reject:
    """Not enough funds: the sender's stream records the refusal, the balance is unchanged."""

    wallet: Wallet
    transfer: Transfer


@dataclass(frozen=True, slots=True)
class KeyReused:
    """The Idempotency-Key names a transfer made with another request."""


@dataclass(frozen=True, slots=True)
class Again:
    """The same request for a known transfer, by another command: answer what it was answered."""

    transfer: Transfer


@dataclass(frozen=True, slots=True)
class NoWallet:
    """The sender has no open wallet (yet)."""


@dataclass(frozen=True, slots=True)
class ToSelf:
    """Sender and recipient are one wallet."""


TransferDecision = Debit | Reject | KeyReused | Again | NoWallet | ToSelf


def decide_transfer(
    request: TransferRequest,
    *,
    sender: Wallet | None,
    known: Transfer | None,
    origin: Origin,
    now: datetime,
) -> TransferDecision:
    if known is not None:
        return Again(known) if known.request_hash == request.request_hash else KeyReused()
    if request.from_user_id == request.to_user_id:
        return ToSelf()
    if sender is None:
        return NoWallet()
    transfer = Transfer(
        request.transfer_id, request.from_user_id, request.to_user_id, request.amount,
        request.request_hash, TransferStatus.PENDING, origin, now,
    )  # fmt: skip
    if sender.balance < request.amount:
        rejected = replace(transfer, status=TransferStatus.REJECTED, settled_at=now)
        return Reject(sender.moved(0), rejected)
    return Debit(sender.moved(-request.amount), transfer)


# The recipient's side of a transfer.
@dataclass(frozen=True, slots=True)
class Credit:
    wallet: Wallet


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: RefusalReason
    """`recipient_unavailable` (no open wallet, or it cannot hold more), or a cancel's reason:
    `expired` or `unreadable`."""

    @property
    def status(self) -> CreditStatus:
        if self.reason == "recipient_unavailable":
            return CreditStatus.REFUSED
        return CreditStatus.CANCELLED


@dataclass(frozen=True, slots=True)
class Decided:
    """The leg was decided before (a cancel after the credit, a redelivered leg)."""

    status: CreditStatus


CreditDecision = Credit | Refuse | Decided


def decide_credit(
    amount: int, *, recipient: Wallet | None, known: CreditStatus | None,
    cancel: CancelReason | None,
) -> CreditDecision:  # fmt: skip
    """A credit leg or a cancel (`cancel` is its reason): the first to arrive decides."""
    if known is not None:
        return Decided(known)
    if cancel is not None:
        return Refuse(cancel)
    if recipient is None or recipient.balance + amount > WALLET_BALANCE_MAX_PAISA:
        return Refuse("recipient_unavailable")
    return Credit(recipient.moved(amount))


def settle_outcome(known: CreditStatus) -> SettleOutcome:
    """What a leg decided before means for the settlement."""
    if known is CreditStatus.APPLIED:
        return "completed"
    return "expired" if known is CreditStatus.CANCELLED else "recipient_unavailable"


@dataclass(frozen=True, slots=True)
class Settle:
    """End a pending transfer: the sender's wallet after it (refunded or not)."""

    wallet: Wallet
    transfer: Transfer
    refunded: bool


def decide_settlement(
    transfer: Transfer | None, sender: Wallet | None, outcome: SettleOutcome, now: datetime
) -> Settle | None:
    """None when there is nothing to settle (unknown, or already final: a repeat)."""
    if transfer is None or transfer.status.final:
        return None
    assert sender is not None, "a pending transfer's sender has a wallet"
    refunded = outcome != "completed"
    status = TransferStatus.REFUNDED if refunded else TransferStatus.COMPLETED
    after = sender.moved(transfer.amount if refunded else 0)
    return Settle(after, replace(transfer, status=status, settled_at=now), refunded)


def decide_top_up(wallet: Wallet | None, amount: int) -> Wallet | None:
    """The wallet after a top-up, or None when there is no wallet or it cannot hold more."""
    if wallet is None or wallet.balance + amount > WALLET_BALANCE_MAX_PAISA:
        return None
    return wallet.moved(amount)
