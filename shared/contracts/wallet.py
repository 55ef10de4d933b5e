"""Wallet messages: commands on `wallet.commands`, events on `wallet.events`, each keyed by the
user id of the wallet it concerns (a transfer's legs by the wallet each leg changes).

Personal data (names, emails, notes, a recorded transaction's `full_name`) travels sealed with
the user's own key (ADR 0021): the log never holds it in clear, and deleting the key shreds
every copy.
"""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, Strict, StringConstraints

from shared.contracts.base import ContractModel, UtcDateTime
from shared.contracts.registry import MessageKind, MessageRegistry, MessageType

WALLET_SOURCE = "ledgerbus/wallet"
CURRENCY = "BDT"

AMOUNT_MAX_PAISA = 10**12
"""The largest single amount (10 billion taka): bounds every sum far inside 64 bits."""
SEALED_MAX_CHARACTERS = 2_048

Amount = Annotated[int, Strict(), Field(gt=0, le=AMOUNT_MAX_PAISA)]
"""Integer paisa, strictly an integer: a float such as 10.0 or a string is refused."""
Sealed = Annotated[
    str,
    StringConstraints(pattern=r"^v1\.[A-Za-z0-9_-]+$", max_length=SEALED_MAX_CHARACTERS),
]
"""Ciphertext from `shared.crypto.sealing`: only the user's key opens it."""
TransactionType = Literal["credit", "debit"]
SettleOutcome = Literal["completed", "recipient_unavailable", "expired", "unreadable"]
RefusalReason = Literal["recipient_unavailable", "expired", "unreadable"]
CancelReason = Literal["expired", "unreadable"]

OPEN_WALLET_V1 = "wallet.open_wallet.v1"
TOP_UP_WALLET_V1 = "wallet.top_up_wallet.v1"
TRANSFER_MONEY_V1 = "wallet.transfer_money.v1"
CREDIT_TRANSFER_V1 = "wallet.credit_transfer.v1"
CANCEL_CREDIT_V1 = "wallet.cancel_credit.v1"
EXPIRE_TRANSFER_V1 = "wallet.expire_transfer.v1"
SETTLE_TRANSFER_V1 = "wallet.settle_transfer.v1"
RECORD_TRANSACTION_V1 = "wallet.record_transaction.v1"
AMEND_TRANSACTION_V1 = "wallet.amend_transaction.v1"
VOID_TRANSACTION_V1 = "wallet.void_transaction.v1"

WALLET_OPENED_V1 = "wallet.wallet_opened.v1"
WALLET_TOPPED_UP_V1 = "wallet.wallet_topped_up.v1"
TRANSFER_DEBITED_V1 = "wallet.transfer_debited.v1"
TRANSFER_REJECTED_V1 = "wallet.transfer_rejected.v1"
TRANSFER_CREDITED_V1 = "wallet.transfer_credited.v1"
CREDIT_REFUSED_V1 = "wallet.credit_refused.v1"
TRANSFER_SETTLED_V1 = "wallet.transfer_settled.v1"
TRANSACTION_RECORDED_V1 = "wallet.transaction_recorded.v1"
TRANSACTION_AMENDED_V1 = "wallet.transaction_amended.v1"
TRANSACTION_VOIDED_V1 = "wallet.transaction_voided.v1"


# Commands ---------------------------------------------------------------------------------


class OpenWallet(ContractModel):
    """Open the user's wallet with the opening balance, moved from the system account."""

    user_id: UUID
    name_sealed: Sealed
    email_sealed: Sealed


class TopUpWallet(ContractModel):
    """An operator moves money from the system account into a wallet."""

    topup_id: UUID
    user_id: UUID
    amount: Amount


class TransferMoney(ContractModel):
    """Move `amount` from one wallet to another; answered once the transfer is final.

    `request_hash` is the SHA-256 of the request as the caller sent it: a second command for
    the same transfer id (the same Idempotency-Key) with another hash is refused as a reuse.
    """

    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: Amount
    note_sealed: Sealed | None = None
    request_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    requested_at: UtcDateTime


class Leg(ContractModel):
    """What every later step of a transfer carries."""

    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: Amount


class CreditTransfer(Leg):
    """On the recipient's partition: credit the wallet, unless the leg was cancelled there."""


class CancelCredit(Leg):
    """The recipient's partition decides, in order, cancelled or applied: sent at the deadline
    (`expired`), or by the recipient's own partition for a credit leg it could not read
    (`unreadable`), so a readable copy arriving later (a redriven dead letter) finds the leg
    cancelled rather than crediting money the sender got back."""

    reason: CancelReason = "expired"


class ExpireTransfer(Leg):
    """The due-time command the sender's partition schedules when it debits."""


class SettleTransfer(Leg):
    """Back on the sender's partition: end the transfer (refund it unless it completed)."""

    outcome: SettleOutcome


class RecordTransaction(ContractModel):
    """Record an outside transaction for analytics: no money moves."""

    transaction_id: UUID
    user_id: UUID
    amount: Amount
    transaction_type: TransactionType
    transaction_date: UtcDateTime
    full_name_sealed: Sealed | None = None


class AmendTransaction(ContractModel):
    """Change a recorded transaction; the fields left out keep their values."""

    transaction_id: UUID
    user_id: UUID
    amount: Amount | None = None
    transaction_type: TransactionType | None = None
    transaction_date: UtcDateTime | None = None
    full_name_sealed: Sealed | None = None


class VoidTransaction(ContractModel):
    transaction_id: UUID
    user_id: UUID


# Events -----------------------------------------------------------------------------------


class WalletEvent(ContractModel):
    """An event of one wallet's stream: its balance after the event and its sequence."""

    balance: int = Field(ge=0)
    sequence: int = Field(ge=1)


class WalletOpened(WalletEvent):
    user_id: UUID
    amount: Amount
    name_sealed: Sealed
    email_sealed: Sealed
    opened_at: UtcDateTime


class WalletToppedUp(WalletEvent):
    user_id: UUID
    topup_id: UUID
    amount: Amount
    topped_up_at: UtcDateTime


class TransferDebited(WalletEvent):
    """The sender's wallet paid; the money is in flight until the transfer settles."""

    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: Amount
    note_sealed: Sealed | None = None
    debited_at: UtcDateTime


class TransferRejected(WalletEvent):
    """The sender could not pay; the balance is unchanged and every retry gets this answer."""

    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: Amount
    code: Literal["insufficient_funds"]
    rejected_at: UtcDateTime


class TransferCredited(WalletEvent):
    """The recipient's wallet received the money (`balance`, `sequence`: the recipient's)."""

    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: Amount
    credited_at: UtcDateTime


class CreditRefused(ContractModel):
    """The recipient's partition refused the leg: no open wallet, or cancelled first. It
    touches no wallet, so its stream is the transfer's own credit (`credit:<id>`, once)."""

    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: Amount
    reason: RefusalReason
    refused_at: UtcDateTime


class TransferSettled(WalletEvent):
    """The transfer ended on the sender's partition: completed, or refunded to the sender."""

    transfer_id: UUID
    from_user_id: UUID
    to_user_id: UUID
    amount: Amount
    outcome: SettleOutcome
    refunded: bool
    settled_at: UtcDateTime


class RecordedTransaction(ContractModel):
    """The whole state of a recorded transaction after an event (`version` counts events)."""

    transaction_id: UUID
    user_id: UUID
    amount: Amount
    transaction_type: TransactionType
    transaction_date: UtcDateTime
    full_name_sealed: Sealed | None = None
    version: int = Field(ge=1)


class TransactionRecorded(RecordedTransaction):
    recorded_at: UtcDateTime


class TransactionAmended(RecordedTransaction):
    amended_at: UtcDateTime


class TransactionVoided(ContractModel):
    transaction_id: UUID
    user_id: UUID
    version: int = Field(ge=2)
    voided_at: UtcDateTime


WALLET_COMMANDS = MessageRegistry(
    [
        MessageType(OPEN_WALLET_V1, MessageKind.COMMAND, OpenWallet, "Open a user's wallet."),
        MessageType(
            TOP_UP_WALLET_V1, MessageKind.COMMAND, TopUpWallet, "Move system money to a wallet."
        ),
        MessageType(
            TRANSFER_MONEY_V1, MessageKind.COMMAND, TransferMoney, "Transfer between wallets."
        ),
        MessageType(
            CREDIT_TRANSFER_V1, MessageKind.COMMAND, CreditTransfer, "A transfer's credit leg."
        ),
        MessageType(
            CANCEL_CREDIT_V1, MessageKind.COMMAND, CancelCredit, "Cancel a credit leg in order."
        ),
        MessageType(
            EXPIRE_TRANSFER_V1, MessageKind.COMMAND, ExpireTransfer, "A transfer's deadline."
        ),
        MessageType(SETTLE_TRANSFER_V1, MessageKind.COMMAND, SettleTransfer, "End a transfer."),
        MessageType(
            RECORD_TRANSACTION_V1,
            MessageKind.COMMAND,
            RecordTransaction,
            "Record an outside transaction (no money moves).",
        ),
        MessageType(
            AMEND_TRANSACTION_V1,
            MessageKind.COMMAND,
            AmendTransaction,
            "Amend a recorded transaction.",
        ),
        MessageType(
            VOID_TRANSACTION_V1, MessageKind.COMMAND, VoidTransaction, "Void a recorded one."
        ),
    ]
)

WALLET_EVENTS = MessageRegistry(
    [
        MessageType(WALLET_OPENED_V1, MessageKind.EVENT, WalletOpened, "A wallet was opened."),
        MessageType(
            WALLET_TOPPED_UP_V1, MessageKind.EVENT, WalletToppedUp, "System money arrived."
        ),
        MessageType(TRANSFER_DEBITED_V1, MessageKind.EVENT, TransferDebited, "A sender paid."),
        MessageType(
            TRANSFER_REJECTED_V1, MessageKind.EVENT, TransferRejected, "A sender could not pay."
        ),
        MessageType(
            TRANSFER_CREDITED_V1, MessageKind.EVENT, TransferCredited, "A recipient was paid."
        ),
        MessageType(
            CREDIT_REFUSED_V1, MessageKind.EVENT, CreditRefused, "A credit leg was refused."
        ),
        MessageType(TRANSFER_SETTLED_V1, MessageKind.EVENT, TransferSettled, "A transfer ended."),
        MessageType(
            TRANSACTION_RECORDED_V1,
            MessageKind.EVENT,
            TransactionRecorded,
            "An outside transaction was recorded.",
        ),
        MessageType(
            TRANSACTION_AMENDED_V1,
            MessageKind.EVENT,
            TransactionAmended,
            "A recorded transaction was amended.",
        ),
        MessageType(
            TRANSACTION_VOIDED_V1,
            MessageKind.EVENT,
            TransactionVoided,
            "A recorded transaction was voided.",
        ),
    ]
)
