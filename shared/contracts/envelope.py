"""The CloudEvents 1.0 envelope in structured JSON mode, as every topic carries it."""

import re
from typing import Annotated, Any, Literal
from uuid import uuid4

import orjson
from pydantic import ConfigDict, Field, StringConstraints, model_validator

from shared.contracts.base import ContractModel, Identifier, SourceText, UtcDateTime, utc_now

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE: Literal["application/json"] = "application/json"


EXTENSION_NAME_PATTERN = "^[a-z0-9]{1,20}$"
"""CloudEvents 1.0: extension attribute names are lowercase letters and digits, at most 20."""
_EXTENSION_NAME = re.compile("[a-z0-9]{1,20}")
"""Used with `fullmatch`: `$` in a Python pattern also matches before a final newline."""
EXTENSIONS_MAX = 16
EXTENSION_VALUE_MAX_CHARACTERS = 1_024
EXTENSION_INTEGER_MIN = -(2**31)
EXTENSION_INTEGER_MAX = 2**31 - 1
"""The specification's Integer is 32 bits; a wider one could not even be written back out."""
_NOT_A_CLOUDEVENTS_STRING = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""The specification's String excludes control characters and surrogates."""
JSON_CONTENT_TYPE_PATTERN = r"^application/json(\s*;[^\x00-\x1f]{0,200})?$"
"""`application/json`, with parameters such as `; charset=utf-8` allowed (RFC 2045)."""


def _extension_value_problem(value: object) -> str | None:
    """Why `value` cannot be an extension attribute's value, or None when it can."""
    if value is None or isinstance(value, bool):
        return None  # a null attribute is the same as an absent one (JSON Format, 2.2)
    if isinstance(value, int):
        in_range = EXTENSION_INTEGER_MIN <= value <= EXTENSION_INTEGER_MAX
        return None if in_range else "an integer outside 32 bits"
    if isinstance(value, str):
        if len(value) > EXTENSION_VALUE_MAX_CHARACTERS:
            return f"longer than {EXTENSION_VALUE_MAX_CHARACTERS} characters"
        if _NOT_A_CLOUDEVENTS_STRING.search(value) is not None:
            return "a string with control characters or surrogates"
        return None
    return "not a string, integer or boolean"


class CloudEvent(ContractModel):
    """One record value: the envelope with its `data` still untyped.

    The registry validates `data` against the model registered for `type`, so the envelope
    can be parsed once without knowing which message it carries. The envelope is a CloudEvent
    as the specification has it: `time` is optional, and extension attributes (`traceparent`,
    `partitionkey`, ...) are accepted when their names and values are what the specification
    allows, bounded in number and size; they ride along and decide nothing. The `data` of each
    message type stays strict (`extra="forbid"`).
    """

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        str_strip_whitespace=False,
        json_schema_extra={
            "propertyNames": {"pattern": EXTENSION_NAME_PATTERN},
            "additionalProperties": {
                "type": ["string", "integer", "boolean", "null"],
                "maxLength": EXTENSION_VALUE_MAX_CHARACTERS,
                "minimum": EXTENSION_INTEGER_MIN,
                "maximum": EXTENSION_INTEGER_MAX,
            },
        },
    )

    specversion: Literal["1.0"]
    id: Identifier
    source: SourceText
    type: str = Field(min_length=1, max_length=128)
    subject: str | None = Field(default=None, max_length=256)
    time: UtcDateTime | None = None
    datacontenttype: Annotated[str, StringConstraints(pattern=JSON_CONTENT_TYPE_PATTERN)] | None = (
        DATA_CONTENT_TYPE
    )
    dataschema: str | None = Field(default=None, max_length=512)
    data: dict[str, Any]
    correlationid: str | None = Field(default=None, max_length=128)
    causationid: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _extensions_are_cloudevents_attributes(self) -> "CloudEvent":
        extensions = self.model_extra or {}
        if len(extensions) > EXTENSIONS_MAX:
            raise ValueError(f"at most {EXTENSIONS_MAX} extension attributes")
        for name, value in extensions.items():
            if _EXTENSION_NAME.fullmatch(name) is None:
                raise ValueError(
                    f"{name[:40]!r} is not an attribute of the envelope, and not a valid"
                    " extension name (lowercase letters and digits, at most 20)"
                )
            problem = _extension_value_problem(value)
            if problem is not None:
                raise ValueError(f"the value of extension {name} is {problem}")
        return self


def new_message_id() -> str:
    """A fresh message id; uuid4 so ids from different producers never collide."""
    return str(uuid4())


def build_envelope(
    *,
    message_type: str,
    source: str,
    subject: str,
    data: ContractModel,
    message_id: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> CloudEvent:
    """Wrap typed data in an envelope, stamping id and time."""
    return CloudEvent(
        specversion="1.0",
        id=message_id or new_message_id(),
        source=source,
        type=message_type,
        subject=subject,
        time=utc_now(),
        data=data.model_dump(mode="json"),
        correlationid=correlation_id,
        causationid=causation_id,
    )


def encode_event(
    *,
    message_type: str,
    source: str,
    subject: str,
    data: ContractModel,
    correlation_id: str | None,
    causation_id: str | None,
    message_id: str | None = None,
) -> tuple[str, bytes]:
    """Serialise a new envelope straight to bytes; returns its id and the record value.

    The hot path of every processor: `data` was validated when it was built, so the envelope is
    assembled with orjson around pydantic-core's own JSON of `data` instead of being validated
    and dumped a second time. A unit test checks the bytes parse back to the same models.
    """
    message_id = message_id or new_message_id()
    envelope: dict[str, object] = {
        "specversion": "1.0",
        "id": message_id,
        "source": source,
        "type": message_type,
        "subject": subject,
        "time": utc_now(),
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": orjson.Fragment(type(data).__pydantic_serializer__.to_json(data)),
    }
    if correlation_id is not None:
        envelope["correlationid"] = correlation_id
    if causation_id is not None:
        envelope["causationid"] = causation_id
    return message_id, orjson.dumps(envelope, option=orjson.OPT_UTC_Z)


def encode_envelope(envelope: CloudEvent) -> bytes:
    """Serialise an envelope for a record value, leaving out unset optional attributes."""
    return orjson.dumps(envelope.model_dump(mode="json", exclude_none=True))
