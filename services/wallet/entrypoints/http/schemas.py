"""What the wallet's routes take and answer, as OpenAPI shows them.

Every request body forbids unknown fields: a body carrying `balance`, `user_id` or `status` is
a 422, never silently ignored. Amounts are integer paisa, strictly (a float is a 422).
"""

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    model_validator,
)

from services.wallet.domain.identity import EMAIL_MAX_CHARACTERS, NAME_MAX_CHARACTERS, is_email
from shared.contracts.base import (
    VISIBLE_TEXT_PATTERN,
    ContractModel,
    UtcDateTime,
    forbidden_character_class,
    visible_text,
)
from shared.contracts.wallet import AMOUNT_MAX_PAISA, TransactionType
from shared.crypto.sealing import PLAINTEXT_MAX_BYTES
from shared.http.schemas import DATE_ONLY, idempotency_key_header

NOTE_MAX_CHARACTERS = 200
"""Visible text: no forbidden character (ADR 0016), and not only whitespace."""
_LOCAL = forbidden_character_class("@\\s")
_DOMAIN = forbidden_character_class("@\\s.")
EMAIL_PATTERN = f"^[^{_LOCAL}]{{1,64}}@[^{_DOMAIN}][^{_LOCAL}]*\\.[^{_DOMAIN}]+$"


def _text_schema(minimum: int, maximum: int, pattern: str) -> WithJsonSchema:
    """The schema states the rule (so clients and schemathesis know it); the validators
    enforce it with a message naming the problem."""
    return WithJsonSchema(
        {"type": "string", "minLength": minimum, "maxLength": maximum, "pattern": pattern}
    )


def _visible_text(maximum: int) -> Callable[[str], str]:
    """Visible text within `maximum` characters and the sealing bound once normalised."""
    return visible_text(maximum, PLAINTEXT_MAX_BYTES)


_visible_email = _visible_text(EMAIL_MAX_CHARACTERS)


def _email(value: str) -> str:
    if not is_email(value):
        raise ValueError("must be an email address such as name@example.com")
    return _visible_email(value)


def _pin(value: str) -> str:
    if re.fullmatch(r"[0-9]{5}", value) is None:
        raise ValueError("must be exactly 5 digits")
    return value


def _date_or_time(value: Any) -> Any:
    """A bare date means midnight UTC of that day; a time must say its offset. Only text is
    read: a number would otherwise be taken as seconds since 1970."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 time such as 2026-11-23T10:00:00Z, or a date")
    if DATE_ONLY.fullmatch(value):
        return f"{value}T00:00:00Z"
    return value


def _email_schema() -> dict[str, Any]:
    return {"type": "string", "minLength": 3, "maxLength": EMAIL_MAX_CHARACTERS,
            "pattern": EMAIL_PATTERN}  # fmt: skip


def _note_schema() -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": NOTE_MAX_CHARACTERS,
            "pattern": VISIBLE_TEXT_PATTERN}  # fmt: skip


Name = Annotated[
    str,
    Field(min_length=1, max_length=NAME_MAX_CHARACTERS),
    _text_schema(1, NAME_MAX_CHARACTERS, VISIBLE_TEXT_PATTERN),
    AfterValidator(_visible_text(NAME_MAX_CHARACTERS)),
]
Email = Annotated[
    str,
    Field(min_length=3, max_length=EMAIL_MAX_CHARACTERS),
    _text_schema(3, EMAIL_MAX_CHARACTERS, EMAIL_PATTERN),
    AfterValidator(_email),
]
Pin = Annotated[
    str,
    Strict(),
    Field(min_length=5, max_length=5, pattern=r"^[0-9]{5}$", examples=["12345"]),
    AfterValidator(_pin),
]
Note = Annotated[
    str,
    Field(min_length=1, max_length=NOTE_MAX_CHARACTERS),
    _text_schema(1, NOTE_MAX_CHARACTERS, VISIBLE_TEXT_PATTERN),
    AfterValidator(_visible_text(NOTE_MAX_CHARACTERS)),
]
Amount = Annotated[int, Strict(), Field(gt=0, le=AMOUNT_MAX_PAISA, examples=[2500])]
TransactionDate = Annotated[
    UtcDateTime,
    visible_text,
    BeforeValidator(_date_or_time),
    Field(examples=["2026-11-23T10:00:00Z", "2026-11-23"]),
]


IdempotencyKey = Annotated[
    str | None,
    idempotency_key_header(
        "A fresh value per request, the same on every retry of it. Required for transfers: the"
        " first outcome answers every retry with this key and body; another body answers 409."
        " Keys are kept for ever."
    ),
]


class RegisterRequest(ContractModel):
    name: Name
    email: Email
    pin: Pin


class RegisterResponse(ContractModel):
    id: UUID
    name: str
    email: str
    created_at: datetime
    wallet: Literal["open", "opening"]
    """`opening` when the wallet was not confirmed in time: it opens shortly all the same."""
    position: str | None


class TokenResponse(ContractModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class WalletResponse(ContractModel):
    user_id: UUID
    balance: int
    currency: Literal["BDT"]
    position: str | None


class MeBalanceResponse(ContractModel):
    balance: float = Field(description="Taka, with exactly two decimals.")
    user_email: str


def _one_recipient(schema: dict[str, Any]) -> None:
    """Exactly one recipient field, and the optional ones absent rather than null."""
    schema["oneOf"] = [{"required": ["to_user_id"]}, {"required": ["to_email"]}]
    for name in ("to_user_id", "to_email", "note"):
        schema["properties"][name].pop("default", None)


class TransferRequest(ContractModel):
    """The recipient by exactly one of `to_user_id` and `to_email` (the schema says so too)."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_one_recipient)

    to_user_id: Annotated[UUID | None, WithJsonSchema({"type": "string", "format": "uuid"})] = None
    to_email: Annotated[Email | None, WithJsonSchema(_email_schema())] = None
    amount: Amount
    note: Annotated[Note | None, WithJsonSchema(_note_schema())] = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        """Absent, not null: an explicit null is not a recipient nor a note."""
        if isinstance(data, dict):
            for name in ("to_user_id", "to_email", "note"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name} may be left out, but not null")
        return data

    @model_validator(mode="after")
    def _one_recipient(self) -> "TransferRequest":
        if (self.to_user_id is None) == (self.to_email is None):
            raise ValueError("name the recipient by exactly one of to_user_id and to_email")
        return self


class SeedTransferRequest(ContractModel):
    """The seed's transfer body: the recipient by id, the amount in paisa."""

    to_user_id: UUID
    amount: Amount


class TransferResponse(ContractModel):
    id: UUID
    status: Literal["pending", "completed", "rejected", "refunded"]
    from_user_id: UUID
    to_user_id: UUID
    amount: int
    created_at: datetime
    position: str | None = None
    command_id: str | None = Field(
        default=None, description="With 202: the command, for GET /wallet/commands/{id}."
    )


class TransferRefusedResponse(ContractModel):
    """A refusal: the error shape, plus the transfer when it was decided (insufficient_funds,
    transfer_refunded)."""

    detail: str
    code: str
    id: UUID | None = None
    status: Literal["rejected", "refunded"] | None = None
    from_user_id: UUID | None = None
    to_user_id: UUID | None = None
    amount: int | None = None
    created_at: datetime | None = None
    position: str | None = None


class MovementResponse(ContractModel):
    id: UUID
    kind: Literal["opening", "topup", "transfer", "refund"]
    direction: Literal["credit", "debit"]
    amount: int
    balance: int
    transfer_id: UUID | None
    counterparty_user_id: UUID | None
    created_at: datetime
    position: str


class MovementsResponse(ContractModel):
    user_id: UUID
    transactions: list[MovementResponse]
    next_before: UUID | None


class TopUpRequest(ContractModel):
    user_id: UUID
    amount: Amount


class SystemResponse(ContractModel):
    total_user_balance: int = Field(description="Every wallet's balance plus money in flight.")
    system_balance: int
    wallet_count: int
    in_flight: int


class RecordTransactionRequest(ContractModel):
    transaction_amount: Amount
    transaction_type: TransactionType
    transaction_date: TransactionDate
    full_name: Name | None = None


class AmendTransactionRequest(ContractModel):
    transaction_amount: Amount | None = None
    transaction_type: TransactionType | None = None
    transaction_date: TransactionDate | None = None
    full_name: Name | None = None


class RecordedTransactionResponse(ContractModel):
    id: UUID
    user_id: UUID
    transaction_amount: int
    transaction_type: TransactionType
    transaction_date: datetime
    full_name: str | None = None
    status: Literal["active", "voided"]
    version: int
    created_at: datetime | None = None
    updated_at: datetime
    position: str | None = None


class RecordedTransactionGoneResponse(RecordedTransactionResponse):
    """A voided transaction: 410 Gone, with the record as it stood when voided."""

    detail: str
    code: Literal["transaction_voided"]


class RecordedTransactionsResponse(ContractModel):
    user_id: UUID
    transactions: list[RecordedTransactionResponse]
    next_before: UUID | None
