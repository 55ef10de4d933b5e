"""The producer every service uses: `acks=all`, ordered per partition, sent in batches."""

import asyncio
import functools
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from shared.engine.messages import OutgoingMessage, PublishedMessage

PRODUCER_LINGER_MILLISECONDS = 2
"""A short linger lets concurrent requests share one produce request without visible delay."""
PRODUCER_REQUEST_TIMEOUT_MILLISECONDS = 30_000
PRODUCER_MAX_BATCH_BYTES = 512 * 1024
PRODUCER_MAX_REQUEST_BYTES = 4 * 1024 * 1024


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


PARTITION_CACHE_KEYS = 200_000
"""aiokafka's murmur2 is pure Python; keys (aggregates) repeat, so their partitions are cached."""


@functools.lru_cache(maxsize=PARTITION_CACHE_KEYS)
def partition_for(key: bytes, partition_count: int) -> int:
    """The partition the Java client, aiokafka and this producer give a key: murmur2.

    librdkafka (confluent-kafka, and the Go, Node and Rust clients built on it) hashes with
    CRC32 by default; processors forward a command that lands elsewhere to this partition.
    """
    return int(murmur2(key) & 0x7FFFFFFF) % partition_count


async def publish_all(
    producer: AIOKafkaProducer, messages: Sequence[OutgoingMessage]
) -> list[PublishedMessage]:
    """Send every message, in order per partition, and wait for every acknowledgement.

    Messages are packed into record batches per partition, which costs far less than a `send`
    per message; a record's offset is its batch's base offset plus its index in the batch.
    Partitions are sent concurrently; within one partition each batch waits for the previous
    one's acknowledgement, so a batch that fails can never be overtaken by the next.
    """
    partitions: list[int] = []
    groups: dict[tuple[str, int], list[int]] = {}
    for index, message in enumerate(messages):
        count = len(await producer.partitions_for(message.topic))
        if message.partition is not None:
            partition = message.partition % count
        else:
            assert message.key is not None, "a record needs a key or an explicit partition"
            partition = partition_for(message.key, count)
        partitions.append(partition)
        groups.setdefault((message.topic, partition), []).append(index)
    offsets = [0] * len(messages)

    async def send_partition(topic: str, partition: int, indexes: list[int]) -> None:
        for batch, members in _batches(producer, messages, indexes):
            metadata = await (await producer.send_batch(batch, topic, partition=partition))
            for position, index in enumerate(members):
                offsets[index] = metadata.offset + position

    await asyncio.gather(*(send_partition(t, p, ix) for (t, p), ix in groups.items()))
    return [
        PublishedMessage(message, partitions[index], offsets[index])
        for index, message in enumerate(messages)
    ]


def _batches(
    producer: AIOKafkaProducer, messages: Sequence[OutgoingMessage], indexes: list[int]
) -> list[tuple[BatchBuilder, list[int]]]:
    """Fill record batches in order, starting a new one whenever the current one is full."""
    batches: list[tuple[BatchBuilder, list[int]]] = [(producer.create_batch(), [])]
    for index in indexes:
        message = messages[index]
        arguments = {"key": message.key, "value": message.value, "timestamp": None,
                     "headers": list(message.headers)}  # fmt: skip
        if batches[-1][0].append(**arguments) is None:
            batches.append((producer.create_batch(), []))
            assert batches[-1][0].append(**arguments) is not None, "a record fits an empty batch"
        batches[-1][1].append(index)
    return batches
