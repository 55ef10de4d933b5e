"""What the ledger's routes take and answer, as OpenAPI shows them."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from shared.contracts.base import ContractModel, Identifier, PathIdentifier, RequestedOperation

POSITION_PATTERN = r"^[0-9]{1,10}:[0-9]{1,19}(,[0-9]{1,10}:[0-9]{1,19}){0,15}$"
"""`partition:offset[,partition:offset]`, at most 16 parts (see shared.kafka.positions)."""


class RecordEntryRequest(ContractModel):
    owner_id: PathIdentifier
    operation: RequestedOperation = Field(examples=["CREDIT_ADD"])
    nonce: Identifier


class EntryResponse(ContractModel):
    id: UUID
    app: str
    owner_id: str
    operation: str
    amount: int
    nonce: str
    created_on: datetime
    balance: int
    position: str


class EntriesResponse(ContractModel):
    owner_id: str
    app: str
    entries: list[EntryResponse]
    next_before: UUID | None


class BalanceResponse(ContractModel):
    owner_id: str
    app: str
    balance: int
    last_updated: datetime | None
    position: str | None


class OperationsResponse(ContractModel):
    app: str
    operations: dict[str, int]


class ErrorResponse(ContractModel):
    detail: str
    code: str


class CommandPendingResponse(ContractModel):
    """A command whose answer is not (yet) available: ask again later."""

    detail: str
    code: str
    command_id: str


class PendingResponse(ContractModel):
    command_id: str
    status: str


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}
