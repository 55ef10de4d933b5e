"""Base model and field types shared by every contract."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

IDENTIFIER_MAX_LENGTH_CHARACTERS = 128
"""Owner ids, nonces and message ids are bounded so one record can never carry a huge key."""

APP_NAME_MAX_LENGTH_CHARACTERS = 32


class ContractModel(BaseModel):
    """Frozen, strict about unknown fields: the shape of everything crossing an edge."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


def _require_utc(value: datetime) -> datetime:
    """Reject naive times and normalise every aware time to UTC (a no-op for `Z` times)."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("time must carry a UTC offset, for example 2026-01-31T12:00:00Z")
    return value.astimezone(UTC) if offset else value


UtcDateTime = Annotated[datetime, AfterValidator(_require_utc)]
"""An aware datetime, always normalised to UTC."""

Identifier = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=IDENTIFIER_MAX_LENGTH_CHARACTERS,
        pattern=r"^[^\x00-\x1f\x7f]+$",
    ),
]
"""A free-form identifier chosen by a client: printable, non-empty and bounded."""

AppName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", max_length=APP_NAME_MAX_LENGTH_CHARACTERS),
]
"""An application name such as `healthai`: lowercase, so it is safe in keys and URLs."""

OperationName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
"""A ledger operation name such as `CREDIT_SPEND`."""


def utc_now() -> datetime:
    """The current time in UTC; the one clock every service reads."""
    return datetime.now(UTC)
