"""What a handler receives and what the engine sends on its behalf."""

from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeAlias, TypeVar

from aiokafka.structs import ConsumerRecord

from shared.contracts.envelope import CloudEvent
from shared.kafka.positions import format_position

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Header: TypeAlias = tuple[str, bytes | None]
"""A Kafka header: its value may be null (Kafka allows it; confluent-kafka sends `None`)."""
DataT_co = TypeVar("DataT_co", covariant=True)

NOTIFY_HEADER = "ledgerbus-reply"
"""Set by the gateway on commands it waits for: their replies are also sent with NOTIFY."""
NOTIFY_HEADER_VALUE = b"notify"
FORWARDED_FROM_HEADER = "ledgerbus-forwarded-from"
"""On a command re-published to the partition that owns its key: `topic:partition:offset`."""
FORWARD_HOPS_HEADER = "ledgerbus-forward-hops"
CONTENT_TYPE_HEADER = "content-type"


class ReplyKey(NamedTuple):
    """The CloudEvents identity of the command a reply answers: `source` and `id` together
    (the specification makes only the pair unique)."""

    source: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Incoming(Generic[DataT_co]):
    """One valid message handed to a handler: where it sits in the log, its envelope, its data."""

    record: Record
    envelope: CloudEvent
    data: DataT_co
    notify: bool
    """Someone (a gateway) waits for the reply with LISTEN; the reply is also sent by NOTIFY."""

    @property
    def identity(self) -> ReplyKey:
        return ReplyKey(self.envelope.source, self.envelope.id)

    @property
    def position(self) -> str:
        return format_position(self.record.partition, self.record.offset)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A record to publish. Headers are byte pairs so dead letters keep the original ones."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[Header, ...] = field(default_factory=tuple)
    partition: int | None = None
    """Set only where the key cannot say it: a dead letter of a record that had no key."""
    message_id: str | None = None
    """The CloudEvents id of the value, when the engine built it (events, commands)."""
    reply_keys: tuple[ReplyKey, ...] = ()
    """Stored replies that answer with this message's position once it is published."""


@dataclass(frozen=True, slots=True)
class PublishedMessage:
    message: OutgoingMessage
    partition: int
    offset: int

    @property
    def position(self) -> str:
        return format_position(self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class Emitted:
    """A handle on a message a handler emitted in this batch, to answer with its position."""

    message_id: str
    index: int
    """Where the message sits in the batch's outgoing list."""


def header(record: Record, name: str) -> bytes | None:
    """The last value of a header, or None; headers of outside records may be anything."""
    found = None
    for header_name, value in record.headers or ():
        if header_name == name:
            found = value
    return found
