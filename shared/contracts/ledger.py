"""Credit-ledger messages: the command outside producers may publish and the events it yields.

Topics: commands on `ledger.commands`, events on `ledger.events`, both keyed `{app}:{owner_id}`.
"""

from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts.base import (
    AppName,
    ContractModel,
    Identifier,
    OperationName,
    PathIdentifier,
    RequestedOperation,
    UtcDateTime,
)
from shared.contracts.registry import MessageKind, MessageRegistry, MessageType

RECORD_ENTRY_V1 = "ledger.record_entry.v1"
ENTRY_RECORDED_V1 = "ledger.entry_recorded.v1"
ENTRY_REJECTED_V1 = "ledger.entry_rejected.v1"

LEDGER_SOURCE = "ledgerbus/ledger"


def aggregate_key(app: str, owner_id: str) -> str:
    """The record key of every ledger message: one owner's account within one app."""
    return f"{app}:{owner_id}"


class RecordEntry(ContractModel):
    """Command: record one catalog operation for an owner, once per nonce within the app.

    `operation` is any visible text: a name outside the app's catalog is a decision of the
    processor (`unknown_operation`), not a malformed command.
    """

    app: AppName
    owner_id: PathIdentifier
    operation: RequestedOperation
    nonce: Identifier


class EntryRecorded(ContractModel):
    """Event: an entry was recorded and the owner's balance moved by `amount`."""

    entry_id: UUID
    app: AppName
    owner_id: PathIdentifier
    operation: OperationName
    amount: int
    nonce: Identifier
    balance: int = Field(ge=0, description="The owner's balance after this entry.")
    sequence: int = Field(ge=1, description="Position of this event in the owner's stream.")
    created_on: UtcDateTime
    command_id: Identifier


RejectionCode = Literal["insufficient_balance"]


class EntryRejected(ContractModel):
    """Event: the nonce's command was refused; a retry of that nonce gets the same refusal."""

    app: AppName
    owner_id: PathIdentifier
    operation: OperationName
    amount: int
    nonce: Identifier
    code: RejectionCode
    detail: str = Field(max_length=1_000)
    balance: int = Field(ge=0, description="The owner's balance, unchanged by the refusal.")
    sequence: int = Field(ge=1)
    rejected_on: UtcDateTime
    command_id: Identifier


LEDGER_COMMANDS = MessageRegistry(
    [
        MessageType(
            RECORD_ENTRY_V1,
            MessageKind.COMMAND,
            RecordEntry,
            "Record a catalog operation for an owner; the nonce makes it idempotent.",
        ),
    ]
)

LEDGER_EVENTS = MessageRegistry(
    [
        MessageType(ENTRY_RECORDED_V1, MessageKind.EVENT, EntryRecorded, "An entry was recorded."),
        MessageType(
            ENTRY_REJECTED_V1, MessageKind.EVENT, EntryRejected, "A nonce's command was refused."
        ),
    ]
)
