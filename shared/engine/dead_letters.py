"""Dead letters: a record rejected on intake goes to `<topic>.dlq` as it was, with why.

Only a deterministic rejection of the record itself (not JSON, not a CloudEvent, an unknown
type, invalid data, an unknown app) is dead-lettered; any other failure retries and then halts
the partition (see `failures`). A letter never grows past the broker's record limit: a value or
header set too large to publish again is truncated, and headers say so and give the original
size, so a size refusal cannot wedge the partition.
"""

from shared.engine.messages import Header, OutgoingMessage, Record
from shared.kafka.topics import dead_letter_topic

DEAD_LETTER_VALUE_MAX_BYTES = 256 * 1024
"""Below every broker's default record limit (Kafka: about 1 MiB) with room for the headers."""
DEAD_LETTER_HEADERS_MAX_BYTES = 16 * 1024
"""The original headers are kept up to this size in total; beyond it they are dropped."""
ERROR_MESSAGE_HEADER_MAX_BYTES = 1_000
ERROR_CODE_HEADER = "error_code"
ERROR_MESSAGE_HEADER = "error_message"
TRUNCATED_HEADER = "ledgerbus-truncated"
ORIGINAL_SIZE_HEADER = "original_size"
HEADERS_DROPPED_HEADER = "ledgerbus-headers-dropped"


def utf8_within(text: str, maximum_bytes: int) -> bytes:
    """`text` as UTF-8, cut to at most `maximum_bytes` on a character boundary (consumers that
    decode headers strictly must not meet half a character); unencodable characters escaped."""
    encoded = text.encode("utf-8", "backslashreplace")
    if len(encoded) <= maximum_bytes:
        return encoded
    return encoded[:maximum_bytes].decode("utf-8", "ignore").encode("utf-8")


def dead_letter(record: Record, code: str, message: str) -> OutgoingMessage:
    """The record as it was (key, value, headers) plus `error_code` and `error_message`.

    The source coordinates ride along so an operator can find the original and a redelivered
    dead letter can be recognised.
    """
    value = record.value if record.value is not None else b""
    original = tuple((name, data) for name, data in (record.headers or ()))
    headers: tuple[Header, ...] = original
    size = sum(len(name) + len(data or b"") for name, data in original)
    if size > DEAD_LETTER_HEADERS_MAX_BYTES:
        headers = ((HEADERS_DROPPED_HEADER, str(len(original)).encode()),)
    if len(value) > DEAD_LETTER_VALUE_MAX_BYTES:
        headers += (
            (TRUNCATED_HEADER, b"true"),
            (ORIGINAL_SIZE_HEADER, str(len(value)).encode()),
        )
        value = value[:DEAD_LETTER_VALUE_MAX_BYTES]
    headers += (
        (ERROR_CODE_HEADER, code.encode()),
        (ERROR_MESSAGE_HEADER, utf8_within(message, ERROR_MESSAGE_HEADER_MAX_BYTES)),
        ("original_topic", record.topic.encode()),
        ("original_partition", str(record.partition).encode()),
        ("original_offset", str(record.offset).encode()),
    )
    return OutgoingMessage(
        topic=dead_letter_topic(record.topic),
        key=record.key,
        value=value,
        headers=headers,
        partition=None if record.key is not None else record.partition,
    )
