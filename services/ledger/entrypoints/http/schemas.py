"""What the ledger's routes take and answer, as OpenAPI shows them."""

from datetime import datetime
from uuid import UUID

from pydantic import Field

from shared.contracts.base import ContractModel, Identifier, PathIdentifier, RequestedOperation


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
