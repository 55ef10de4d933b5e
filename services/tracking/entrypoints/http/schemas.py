"""The tracking routes' bodies and answers, with OpenAPI that says what the validators enforce."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import ConfigDict, Field, field_validator

from shared.contracts.base import ContractModel
from shared.contracts.tracking import (
    ENTRY_TYPES,
    EntryDate,
    EntryType,
    MetaData,
    meta_data_of_its_type,
)
from shared.http.schemas import idempotency_key_header

IdempotencyKey = Annotated[
    str | None,
    idempotency_key_header(
        "A retry with the same key and body answers the first outcome (the same entry);"
        " another body answers 409."
    ),
]


def _typed_variants(schema: dict[str, Any]) -> None:
    """One variant per entry type, pairing `type` with its own `meta_data` model, so clients
    and schemathesis know that a food entry carries food's members."""
    members = schema["properties"]["meta_data"]["anyOf"]
    schema["oneOf"] = [
        {"properties": {"type": {"const": entry_type}, "meta_data": member}}
        for entry_type, member in zip(ENTRY_TYPES, members, strict=True)
    ]
    for name in ("date", "user_id"):
        schema["properties"][name].pop("default", None)


class EntryRequest(ContractModel):
    """An entry: the user's own with their token, any of its users' with an app's key."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_typed_variants)

    type: EntryType
    date: EntryDate | None = Field(
        default=None, description="RFC 3339 time or YYYY-MM-DD (midnight UTC); default: now."
    )
    meta_data: MetaData
    user_id: UUID | None = Field(
        default=None, description="Required with an app's X-Api-Key; with a user's token, theirs."
    )

    _typed = field_validator("meta_data", mode="before")(meta_data_of_its_type)


class EntryResponse(ContractModel):
    id: UUID
    user_id: UUID
    type: EntryType
    date: datetime
    year: int
    meta_data: dict[str, Any]
    created_on: datetime
    position: str


class EntriesResponse(ContractModel):
    user_id: UUID
    entries: list[EntryResponse]
    next_before: UUID | None = Field(description="The cursor for the next page, if any.")


class YearDocument(ContractModel):
    """The seed's year document: one per user and year, its entries oldest first."""

    user_id: UUID
    year: int
    created_at: datetime
    entries: list[EntryResponse]
    entries_ids: list[UUID]
