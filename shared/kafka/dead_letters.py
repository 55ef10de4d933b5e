"""Dead letters: a record that cannot be handled goes to `<topic>.dlq` unchanged, with why."""

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from shared.kafka.checkpoints import CheckpointStore, Claim
from shared.kafka.producer import OutgoingMessage, publish_all
from shared.kafka.topics import dead_letter_topic

ERROR_MESSAGE_HEADER_MAX_BYTES = 1000
PROCESSING_FAILED_REASON_MAX_CHARACTERS = 500


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
        partition=None if record.key is not None else record.partition,
    )


async def park_failed_record(  # noqa: PLR0917 (each argument is a different resource)
    pool: asyncpg.Pool,
    checkpoints: CheckpointStore,
    producer: AIOKafkaProducer,
    claim: Claim,
    record: ConsumerRecord[bytes, bytes],
    error: Exception,
) -> OutgoingMessage | None:
    """Dead-letter one record that keeps failing and step the checkpoint over it, atomically.

    The letter is published before the checkpoint commits, so a crash repeats it rather than
    losing it. Returns None when this owner was fenced meanwhile (nothing was changed).
    """
    letter = dead_letter(
        record, "processing_failed", repr(error)[:PROCESSING_FAILED_REASON_MAX_CHARACTERS]
    )
    async with pool.acquire() as connection, connection.transaction():
        advanced = await checkpoints.advance(
            connection, record.topic, record.partition, claim, record.offset + 1
        )
        if not advanced:
            return None
        await publish_all(producer, [letter])
    return letter
