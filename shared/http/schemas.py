"""Response shapes every service's routes share, as OpenAPI shows them."""

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Header, Query
from pydantic import BeforeValidator

from shared.contracts.base import ContractModel

POSITION_PATTERN = r"^[0-9]{1,10}:[0-9]{1,19}(,[0-9]{1,10}:[0-9]{1,19}){0,15}$"
"""`partition:offset[,partition:offset]`, at most 16 parts (see shared.kafka.positions)."""


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


DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: Any) -> Any:
    """Only `YYYY-MM-DD`: a bare number would otherwise be taken as seconds since 1970."""
    if isinstance(value, str) and DATE_ONLY.fullmatch(value):
        return value
    raise ValueError("must be a date such as 2026-11-23")


Day = Annotated[date, BeforeValidator(_iso_day)]
"""A UTC day in a query (`from`, `to`)."""
Since = Annotated[Day | None, Query(alias="from", description="First UTC day, inclusive.")]
Until = Annotated[Day | None, Query(alias="to", description="Last UTC day, inclusive.")]

MinPosition = Annotated[
    str | None,
    Query(
        pattern=POSITION_PATTERN,
        description="Wait (up to 5 s, then 504) until the read model has applied this position.",
    ),
]

IDEMPOTENCY_KEY_MAX_CHARACTERS = 255
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"
"""Visible ASCII without spaces, as HTTP headers carry it safely (IETF Idempotency-Key)."""


def idempotency_key_header(description: str) -> Any:
    """The `Idempotency-Key` header, bounded and patterned; each route says what it means."""
    return Header(
        alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX_CHARACTERS,
        pattern=IDEMPOTENCY_KEY_PATTERN, description=description,
    )  # fmt: skip


def day_start(day: date | None) -> datetime | None:
    """Midnight UTC at the start of `day` (an inclusive `from`)."""
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


def day_after(day: date | None) -> datetime | None:
    """The exclusive end of an inclusive last day; none past the last representable day."""
    if day is None or day == date.max:
        return None
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
