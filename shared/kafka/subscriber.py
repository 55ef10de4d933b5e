"""FastStream wiring for a partition owner: a batch subscriber with an explicit ack policy.

The ack policy is MANUAL: FastStream's Kafka default commits before the handler runs, which
would lose records on a crash. The partition owner commits Kafka offsets itself, only after
PostgreSQL has committed. The parser is total: it never decodes headers or bodies, so a record
with broken bytes reaches the handler (and then the dead-letter topic) instead of stopping the
partition inside the framework.
"""

from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import FAKE_CONSUMER
from faststream.kafka.message import KafkaMessage as KafkaStreamMessage

from shared.engine.partition_owner import PartitionOwner

BATCH_MAX_RECORDS = 1_000
"""Records per fetched batch; one PostgreSQL transaction per partition of a batch."""
BATCH_TIMEOUT_MILLISECONDS = 10
"""How long a fetch waits for records before returning what it has: the latency floor."""
FETCH_MAX_WAIT_MILLISECONDS = 10
HEARTBEAT_SHARE_OF_SESSION = 5
"""A member heartbeats five times per session timeout, so one late heartbeat is no eviction."""
HEARTBEAT_INTERVAL_MIN_MILLISECONDS = 300
MAX_POLL_INTERVAL_MILLISECONDS = 300_000


class _OwnerListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Bridges aiokafka's rebalance callbacks to the partition owner."""

    def __init__(self, owner: PartitionOwner) -> None:
        self.owner = owner
        self.subscriber: Any = None

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.owner.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        assert self.subscriber is not None
        assert self.subscriber.consumer is not None
        await self.owner.on_assigned(self.subscriber.consumer, list(assigned))


async def _parse_batch_without_decoding(
    records: tuple[ConsumerRecord[bytes, bytes], ...],
) -> KafkaStreamMessage:
    first, last = records[0], records[-1]
    return KafkaStreamMessage(
        body=[record.value or b"" for record in records],
        raw_message=records,
        headers={},
        batch_headers=[{} for _ in records],
        message_id=f"{first.topic}-{first.partition}-{first.offset}-{last.offset}",
        consumer=FAKE_CONSUMER,
    )


async def _keep_body(message: KafkaStreamMessage) -> Any:
    return message.body


def subscribe_partition_owner(
    broker: KafkaBroker,
    owner: PartitionOwner,
    *,
    topics: Sequence[str],
    group_id: str,
    description: str,
    max_records: int = BATCH_MAX_RECORDS,
    session_timeout_milliseconds: int,
) -> Any:
    """Register the owner's batch subscriber on `broker` and return it."""
    listener = _OwnerListener(owner)
    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=BATCH_TIMEOUT_MILLISECONDS,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MILLISECONDS,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        listener=listener,
        session_timeout_ms=session_timeout_milliseconds,
        heartbeat_interval_ms=max(
            HEARTBEAT_INTERVAL_MIN_MILLISECONDS,
            session_timeout_milliseconds // HEARTBEAT_SHARE_OF_SESSION,
        ),
        max_poll_interval_ms=MAX_POLL_INTERVAL_MILLISECONDS,
        parser=_parse_batch_without_decoding,
        decoder=_keep_body,
        description=description,
    )
    listener.subscriber = subscriber

    @subscriber
    async def handle_batch(body: Any, message: KafkaMessage) -> None:
        assert subscriber.consumer is not None
        await owner.process(subscriber.consumer, message.raw_message)

    return subscriber
