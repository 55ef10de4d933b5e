"""Health-tracking messages: entries on `tracking.commands`, decided onto `tracking.events`,
both keyed by the user id (ADR 0022).

`meta_data` is part of the contract, one strict model per entry type: a record whose
`meta_data` does not fit its type is refused at intake (a dead letter), never decided.
"""

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shared.contracts.base import (
    DECOMPOSED_INPUT_FACTOR,
    VISIBLE_TEXT_PATTERN,
    ContractModel,
    Identifier,
    UtcDateTime,
    visible_text,
)
from shared.contracts.registry import MessageKind, MessageRegistry, MessageType

TRACKING_SOURCE = "ledgerbus/tracking"
REGISTER_ENTRY_V1 = "tracking.register_entry.v1"
ENTRY_REGISTERED_V1 = "tracking.entry_registered.v1"

LABEL_MAX_CHARACTERS = 200
CALORIES_MAX = 100_000
MINUTES_PER_DAY = 1_440
HOURS_PER_DAY = 24

EntryType = Literal["food", "workout", "sleep", "meditation"]
ENTRY_TYPES: tuple[EntryType, ...] = ("food", "workout", "sleep", "meditation")


Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=LABEL_MAX_CHARACTERS * DECOMPOSED_INPUT_FACTOR),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": LABEL_MAX_CHARACTERS,
            "pattern": VISIBLE_TEXT_PATTERN,
        }
    ),
    AfterValidator(visible_text(LABEL_MAX_CHARACTERS)),
]
"""Visible text such as `Breakfast` or `running`: no control, bidi or tag characters, in NFC."""


def _number_not_boolean(value: Any) -> Any:
    """JSON `true` is not a quantity (Python would read it as 1)."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    return value


Quantity = Annotated[int, Strict()] | Annotated[float, Strict()]
"""A number as sent: 30 stays 30, 7.5 stays 7.5; text such as "30" is not a number."""
Minutes = Annotated[
    Quantity,
    BeforeValidator(_number_not_boolean),
    Field(gt=0, le=MINUTES_PER_DAY, allow_inf_nan=False),
]


class FoodData(ContractModel):
    food: Label
    calories: Annotated[
        int, BeforeValidator(_number_not_boolean), Field(strict=True, ge=0, le=CALORIES_MAX)
    ]


class WorkoutData(ContractModel):
    exercise_type: Label
    duration_minutes: Minutes


class SleepData(ContractModel):
    hours: Annotated[
        Quantity,
        BeforeValidator(_number_not_boolean),
        Field(ge=0, le=HOURS_PER_DAY, allow_inf_nan=False),
    ]


class MeditationData(ContractModel):
    duration_minutes: Minutes


META_DATA_MODELS: dict[str, type[ContractModel]] = {
    "food": FoodData,
    "workout": WorkoutData,
    "sleep": SleepData,
    "meditation": MeditationData,
}
MetaData = FoodData | WorkoutData | SleepData | MeditationData


DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
RFC_3339_OR_DATE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))?"
)


def _date_or_time(value: Any) -> Any:
    """A bare date `YYYY-MM-DD` means midnight UTC of that day; a time must carry its offset.
    Only text is read: a number would be taken as seconds since 1970 (found by probing)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or RFC_3339_OR_DATE.fullmatch(value) is None:
        # pydantic would read "20261120" or "1700000000" as seconds since 1970.
        raise ValueError("must be an RFC 3339 time such as 2026-11-23T10:00:00Z, or a date")
    if DATE_ONLY.fullmatch(value):
        return f"{value}T00:00:00Z"
    return value


EntryDate = Annotated[UtcDateTime, BeforeValidator(_date_or_time)]


def meta_data_of_its_type(value: Any, info: ValidationInfo) -> Any:
    """Validate `meta_data` against the model of `type`, a sibling field, which pydantic's
    discriminated unions cannot pick by; errors are reported at `meta_data`, naming the member."""
    if isinstance(value, ContractModel):
        return value
    entry_type = info.data.get("type")
    if entry_type not in META_DATA_MODELS:
        raise ValueError("cannot be checked without a valid type")
    try:
        return META_DATA_MODELS[entry_type].model_validate(value)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['msg']}"
            for item in error.errors(include_url=False, include_input=False)
        ]
        detail = "; ".join(problems)
        raise ValueError(f"does not fit an entry of type {entry_type}: {detail}") from None


class RegisterEntry(ContractModel):
    """Command: register one tracking entry for a user; `date` defaults to when it is decided."""

    user_id: UUID
    type: EntryType
    date: EntryDate | None = None
    meta_data: MetaData

    _typed = field_validator("meta_data", mode="before")(meta_data_of_its_type)

    @model_validator(mode="after")
    def _meta_data_matches_type(self) -> "RegisterEntry":
        if not isinstance(self.meta_data, META_DATA_MODELS[self.type]):
            raise ValueError(f"meta_data does not fit an entry of type {self.type}")
        return self


class EntryRegistered(ContractModel):
    """Event: an entry was registered; `sequence` is its place in the user's stream."""

    entry_id: UUID
    user_id: UUID
    type: EntryType
    date: UtcDateTime
    year: int = Field(ge=1, le=9999)
    meta_data: MetaData
    created_on: UtcDateTime
    sequence: int = Field(ge=1)
    command_id: Identifier

    _typed = field_validator("meta_data", mode="before")(meta_data_of_its_type)


def entry_year(date: datetime) -> int:
    return date.year


TRACKING_COMMANDS = MessageRegistry(
    [
        MessageType(
            REGISTER_ENTRY_V1,
            MessageKind.COMMAND,
            RegisterEntry,
            "Register a food, workout, sleep or meditation entry for a user.",
        ),
    ]
)

TRACKING_EVENTS = MessageRegistry(
    [
        MessageType(
            ENTRY_REGISTERED_V1, MessageKind.EVENT, EntryRegistered, "An entry was registered."
        ),
    ]
)
