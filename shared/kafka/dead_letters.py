"""Dead letters: a record that cannot be handled goes to `<topic>.dlq` unchanged, with why."""

from aiokafka.structs import ConsumerRecord

from shared.kafka.producer import OutgoingMessage
from shared.kafka.topics import dead_letter_topic

ERROR_MESSAGE_HEADER_MAX_BYTES = 1000


def dead_letter(record: ConsumerRecord[bytes, bytes], code: str, message: str) -> OutgoingMessage:
    """The record as it was (key, value, headers) plus `error_code` and `error_message`.

    The source coordinates ride along so an operator can find the original and a redelivered
    dead letter can be recognised.
    """
    headers = tuple((name, value) for name, value in (record.headers or ()))
    headers += (
        ("error_code", code.encode()),
        ("error_message", message.encode()[:ERROR_MESSAGE_HEADER_MAX_BYTES]),
        ("original_topic", record.topic.encode()),
        ("original_partition", str(record.partition).encode()),
        ("original_offset", str(record.offset).encode()),
    )
    return OutgoingMessage(
        topic=dead_letter_topic(record.topic),
        key=record.key,
        value=record.value if record.value is not None else b"",
        headers=headers,
    )
