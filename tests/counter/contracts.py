"""The counter service's messages: commands on `counter.commands`, events on `counter.events`,
each keyed by the counter it concerns."""

from typing import Literal

from pydantic import Field

from shared.contracts.base import ContractModel, Identifier, PathIdentifier
from shared.contracts.registry import MessageKind, MessageRegistry, MessageType

COMMANDS_TOPIC = "counter.commands"
EVENTS_TOPIC = "counter.events"
SOURCE = "ledgerbus/counter"

DEPOSIT_V1 = "counter.deposit.v1"
MOVE_V1 = "counter.move.v1"
APPLY_CREDIT_V1 = "counter.apply_credit.v1"
CANCEL_CREDIT_V1 = "counter.cancel_credit.v1"
EXPIRE_MOVE_V1 = "counter.expire_move.v1"
SETTLE_MOVE_V1 = "counter.settle_move.v1"
DEPOSITED_V1 = "counter.deposited.v1"
MOVE_DEBITED_V1 = "counter.move_debited.v1"
CREDIT_APPLIED_V1 = "counter.credit_applied.v1"
CREDIT_REFUSED_V1 = "counter.credit_refused.v1"
MOVE_SETTLED_V1 = "counter.move_settled.v1"

Amount = int
Outcome = Literal["completed", "refused", "expired", "unreadable"]


class Deposit(ContractModel):
    counter: PathIdentifier
    amount: Amount = Field(gt=0)


class Move(ContractModel):
    """Move `amount` from `source` to `target`; the answer comes when the move is final."""

    move_id: Identifier
    source: PathIdentifier
    target: PathIdentifier
    amount: Amount = Field(gt=0)
    deadline_seconds: float = Field(gt=0, le=300)


class Leg(ContractModel):
    """What every step of a move carries: which move, and whom to answer in the end."""

    move_id: Identifier
    source: PathIdentifier
    target: PathIdentifier
    amount: Amount = Field(gt=0)
    origin_source: str
    origin_id: Identifier


class ApplyCredit(Leg):
    """Saga step on the target's partition: credit it, unless the move was cancelled there."""


class CancelCredit(Leg):
    """Sent when the deadline passes: the target decides, in order, cancelled or applied."""


class ExpireMove(Leg):
    """The due-time command the source schedules when it debits."""


class SettleMove(Leg):
    """Back on the source's partition: end the move (refund it unless it completed)."""

    outcome: Outcome


class Deposited(ContractModel):
    counter: PathIdentifier
    amount: Amount
    balance: int
    sequence: int = Field(ge=1)


class MoveDebited(Leg):
    balance: int
    sequence: int = Field(ge=1)


class CreditApplied(Leg):
    balance: int
    sequence: int = Field(ge=1)


class CreditRefused(Leg):
    reason: Outcome
    sequence: int = Field(ge=1)


class MoveSettled(Leg):
    outcome: Outcome
    refunded: bool
    balance: int
    sequence: int = Field(ge=1)


COUNTER_COMMANDS = MessageRegistry(
    [
        MessageType(DEPOSIT_V1, MessageKind.COMMAND, Deposit, "Add to a counter."),
        MessageType(MOVE_V1, MessageKind.COMMAND, Move, "Move between two counters."),
        MessageType(APPLY_CREDIT_V1, MessageKind.COMMAND, ApplyCredit, "Credit leg."),
        MessageType(CANCEL_CREDIT_V1, MessageKind.COMMAND, CancelCredit, "Cancel a leg."),
        MessageType(EXPIRE_MOVE_V1, MessageKind.COMMAND, ExpireMove, "A move's deadline."),
        MessageType(SETTLE_MOVE_V1, MessageKind.COMMAND, SettleMove, "End a move."),
    ]
)
COUNTER_EVENTS = MessageRegistry(
    [
        MessageType(DEPOSITED_V1, MessageKind.EVENT, Deposited, "A counter grew."),
        MessageType(MOVE_DEBITED_V1, MessageKind.EVENT, MoveDebited, "Money left a counter."),
        MessageType(CREDIT_APPLIED_V1, MessageKind.EVENT, CreditApplied, "Money arrived."),
        MessageType(CREDIT_REFUSED_V1, MessageKind.EVENT, CreditRefused, "A leg was refused."),
        MessageType(MOVE_SETTLED_V1, MessageKind.EVENT, MoveSettled, "A move ended."),
    ]
)
