"""The registry of versioned message types: `type` string to data model.

A consumer parses the envelope, looks the type up here and validates `data` against the
registered model. Unknown types and invalid data are reported with a code so the record can
be sent to the dead-letter topic with a reason.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Literal, Union, cast

import orjson
from pydantic import Field, TypeAdapter, ValidationError, create_model

from shared.contracts.base import ContractModel
from shared.contracts.envelope import CloudEvent

RECORD_VALUE_MAX_BYTES = 64 * 1024
"""A record larger than this is refused before parsing: no command or event needs more."""

ERROR_MESSAGE_MAX_CHARACTERS = 1000


class MessageKind(StrEnum):
    COMMAND = "command"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class MessageType:
    """One registered message: its type string, kind, topic family and data model."""

    name: str
    kind: MessageKind
    data_model: type[ContractModel]
    description: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    envelope: CloudEvent
    data: ContractModel


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """Why a record could not be parsed: `code` goes to the `error_code` header."""

    code: str
    message: str


def typed_envelope(message_type: MessageType) -> type[CloudEvent]:
    """An envelope model whose `type` is fixed and whose `data` is the registered model."""
    name = "".join(part.title() for part in message_type.name.replace(".", "_").split("_"))
    fields: Any = {
        "type": (Literal[message_type.name], ...),
        "data": (message_type.data_model, ...),
    }
    return create_model(name, __base__=CloudEvent, __doc__=message_type.description, **fields)


class MessageRegistry:
    """Immutable map of type names to message types, built once at start.

    Parsing validates the raw JSON bytes against a union of typed envelopes discriminated by
    `type`, in one pass inside pydantic-core; only a record that fails is parsed again, slowly,
    to say precisely what is wrong with it.
    """

    def __init__(self, types: Iterable[MessageType]) -> None:
        by_name: dict[str, MessageType] = {}
        for message_type in types:
            if message_type.name in by_name:
                raise ValueError(f"message type {message_type.name} is registered twice")
            by_name[message_type.name] = message_type
        self._by_name: Mapping[str, MessageType] = MappingProxyType(by_name)
        envelopes = tuple(typed_envelope(message_type) for message_type in by_name.values())
        union: Any = envelopes[0] if len(envelopes) == 1 else Union[envelopes]  # noqa: UP007
        discriminated: Any = (
            union if len(envelopes) == 1 else Annotated[union, Field(discriminator="type")]
        )
        self._adapter: TypeAdapter[CloudEvent] = TypeAdapter(discriminated)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> MessageType | None:
        return self._by_name.get(name)

    def all(self) -> tuple[MessageType, ...]:
        return tuple(self._by_name.values())

    def parse(self, value: bytes | None) -> ParsedMessage | RejectedRecord:
        """Parse a record value into a typed message, or say precisely why not."""
        if value is None or len(value) == 0:
            return RejectedRecord("empty_record", "The record has no value.")
        if len(value) > RECORD_VALUE_MAX_BYTES:
            return RejectedRecord(
                "record_too_large",
                f"The record value has {len(value)} bytes; the limit is {RECORD_VALUE_MAX_BYTES}.",
            )
        try:
            envelope = self._adapter.validate_json(value)
        except ValidationError:
            return self._explain(value)
        # The adapter only builds registered envelopes, whose `data` is a contract model.
        return ParsedMessage(envelope=envelope, data=cast(ContractModel, envelope.data))

    def _explain(self, value: bytes) -> ParsedMessage | RejectedRecord:
        """The slow path: find the first layer (JSON, envelope, type, data) that is wrong."""
        try:
            raw = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            return RejectedRecord("invalid_json", f"The record value is not JSON: {error}.")
        if not isinstance(raw, dict):
            return RejectedRecord("not_a_cloudevent", "The record value is not a JSON object.")
        try:
            envelope = CloudEvent.model_validate(raw)
        except ValidationError as error:
            return RejectedRecord("not_a_cloudevent", _describe(error))
        message_type = self._by_name.get(envelope.type)
        if message_type is None:
            return RejectedRecord("unknown_type", f"The type {envelope.type!r} is not registered.")
        try:
            data = message_type.data_model.model_validate(envelope.data)
        except ValidationError as error:
            return RejectedRecord("invalid_data", _describe(error))
        return ParsedMessage(envelope=envelope, data=data)


def _describe(error: ValidationError) -> str:
    """A one-line, bounded description of a validation error for a header."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        location = ".".join(str(piece) for piece in item["loc"]) or "value"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)[:ERROR_MESSAGE_MAX_CHARACTERS]
