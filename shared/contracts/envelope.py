"""The CloudEvents 1.0 envelope in structured JSON mode, as every topic carries it."""

from typing import Any, Literal
from uuid import uuid4

import orjson
from pydantic import Field

from shared.contracts.base import ContractModel, Identifier, UtcDateTime, utc_now

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE: Literal["application/json"] = "application/json"


class CloudEvent(ContractModel):
    """One record value: the envelope with its `data` still untyped.

    The registry validates `data` against the model registered for `type`, so the envelope
    can be parsed once without knowing which message it carries.
    """

    specversion: Literal["1.0"]
    id: Identifier
    source: str = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=128)
    subject: str | None = Field(default=None, max_length=256)
    time: UtcDateTime
    datacontenttype: Literal["application/json"] = DATA_CONTENT_TYPE
    dataschema: str | None = Field(default=None, max_length=512)
    data: dict[str, Any]
    correlationid: str | None = Field(default=None, max_length=128)
    causationid: str | None = Field(default=None, max_length=128)


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


def encode_envelope(envelope: CloudEvent) -> bytes:
    """Serialise an envelope for a record value, leaving out unset optional attributes."""
    return orjson.dumps(envelope.model_dump(mode="json", exclude_none=True))
