"""What the wallet's routes take and answer, as OpenAPI shows them.

Every request body forbids unknown fields: a body carrying `balance`, `user_id` or `status` is
a 422, never silently ignored. Amounts are integer paisa, strictly (a float is a 422).
"""

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BeforeValidator, Field, Strict, model_validator

from services.wallet.domain.identity import EMAIL_MAX_CHARACTERS, NAME_MAX_CHARACTERS, is_email
from shared.contracts.base import ContractModel, UtcDateTime, forbidden_character
from shared.contracts.wallet import AMOUNT_MAX_PAISA, TransactionType

NOTE_MAX_CHARACTERS = 200
DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _visible_text(value: str) -> str:
    normalised = unicodedata.normalize("NFC", value)
    found = forbidden_character(normalised)
    if found is not None:
        raise ValueError(f"{found} is not allowed here")
    if not normalised.strip():
        raise ValueError("must not be blank")
    return normalised


def _email(value: str) -> str:
    if not is_email(value):
        raise ValueError("must be an email address such as name@example.com")
    return _visible_text(value)


def _pin(value: str) -> str:
    if re.fullmatch(r"[0-9]{5}", value) is None:
        raise ValueError("must be exactly 5 digits")
    return value


def _date_or_time(value: Any) -> Any:
    """A bare date means midnight UTC of that day; a time must say its offset."""
    if isinstance(value, str) and DATE_ONLY.fullmatch(value):
        return f"{value}T00:00:00Z"
    return value


Name = Annotated[
    str, Field(min_length=1, max_length=NAME_MAX_CHARACTERS), AfterValidator(_visible_text)
]
Email = Annotated[
    str,
    Field(min_length=3, max_length=EMAIL_MAX_CHARACTERS, examples=["alice@example.com"]),
    AfterValidator(_email),
]
Pin = Annotated[
    str,
    Strict(),
    Field(min_length=5, max_length=5, pattern=r"^[0-9]{5}$", examples=["12345"]),
    AfterValidator(_pin),
]
Note = Annotated[
    str, Field(min_length=1, max_length=NOTE_MAX_CHARACTERS), AfterValidator(_visible_text)
]
Amount = Annotated[int, Strict(), Field(gt=0, le=AMOUNT_MAX_PAISA, examples=[2500])]
TransactionDate = Annotated[
    UtcDateTime,
    BeforeValidator(_date_or_time),
    Field(examples=["2026-11-23T10:00:00Z", "2026-11-23"]),
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


class TransferRequest(ContractModel):
    to_user_id: UUID | None = None
    to_email: Email | None = None
    amount: Amount
    note: Note | None = None

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


class RecordedTransactionsResponse(ContractModel):
    user_id: UUID
    transactions: list[RecordedTransactionResponse]
    next_before: UUID | None
