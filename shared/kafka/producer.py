"""The producer every service uses: `acks=all`, ordered per partition, sent in batches."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

PRODUCER_LINGER_MILLISECONDS = 2
"""A short linger lets concurrent requests share one produce request without visible delay."""
PRODUCER_REQUEST_TIMEOUT_MILLISECONDS = 30_000
PRODUCER_MAX_BATCH_BYTES = 512 * 1024
PRODUCER_MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A record to publish. Headers are byte pairs so dead letters keep the original ones."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class PublishedMessage:
    message: OutgoingMessage
    partition: int
    offset: int


def create_producer(bootstrap_servers: str, *, client_id: str) -> AIOKafkaProducer:
    """Build (not start) a producer.

    `acks="all"` waits for every in-sync replica. aiokafka keeps one request in flight per
    partition, so retries cannot reorder one key's records; the broker here has no
    idempotent producer, so a retry can land twice and consumers dedupe by event id.
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        linger_ms=PRODUCER_LINGER_MILLISECONDS,
        request_timeout_ms=PRODUCER_REQUEST_TIMEOUT_MILLISECONDS,
        max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        max_request_size=PRODUCER_MAX_REQUEST_BYTES,
        enable_idempotence=False,
    )


async def publish_all(
    producer: AIOKafkaProducer, messages: Sequence[OutgoingMessage]
) -> list[PublishedMessage]:
    """Send every message, in order, and wait for every acknowledgement."""
    futures = []
    for message in messages:
        futures.append(
            await producer.send(
                message.topic, value=message.value, key=message.key, headers=list(message.headers)
            )
        )
    metadata: list[RecordMetadata] = await asyncio.gather(*futures)
    return [
        PublishedMessage(message=message, partition=meta.partition, offset=meta.offset)
        for message, meta in zip(messages, metadata, strict=True)
    ]
