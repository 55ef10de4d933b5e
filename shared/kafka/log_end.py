"""The true end of each partition's log.

Tansu 0.6 answers ListOffsets(latest) with the base offset of the last record batch plus one,
not with the offset after the last record, so a batch of five records at offsets 0-4 reports an
end of 1. Anything that compares a checkpoint with the end (refusing a checkpoint past the end,
lag, replay targets) would be wrong. The probe reads the last batch itself: the end is one past
the last record it finds. On Apache Kafka the reported end is already right and the probe only
confirms it.
"""

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

PROBE_TIMEOUT_SECONDS = 5.0
PROBE_FETCH_MILLISECONDS = 200
PROBE_REQUEST_TIMEOUT_MILLISECONDS = 10_000


class LogEndUnknownError(KafkaError):  # type: ignore[misc]
    """The last batch could not be read in time; transient, the caller retries."""


PARTITIONS_KEPT_SECONDS = 10.0
"""How long a topic's partition list is reused (a partition added is seen within this)."""


class LogEndProbe:
    """A group-less consumer that only ever reads the last batch of a partition."""

    def __init__(self, bootstrap_servers: str, *, client_id: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            enable_auto_commit=False,
            request_timeout_ms=PROBE_REQUEST_TIMEOUT_MILLISECONDS,
        )
        self._lock = asyncio.Lock()
        self._partitions: dict[str, tuple[float, list[TopicPartition]]] = {}

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions, from metadata of every topic (kept a while).

        Not from the consumer's own metadata: that narrows to the partitions it is assigned,
        and `end_offsets` assigns and unassigns them, so a concurrent call could see none (a
        write's own position was refused as never written)."""
        cached = self._partitions.get(topic)
        if cached is not None and time.monotonic() - cached[0] < PARTITIONS_KEPT_SECONDS:
            return cached[1]
        cluster = await self._consumer._client.fetch_all_metadata()
        known = sorted(cluster.partitions_for_topic(topic) or ())
        found = [TopicPartition(topic, partition) for partition in known]
        if found:
            self._partitions[topic] = (time.monotonic(), found)
        return found

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        async with self._lock:
            reported: dict[TopicPartition, int] = await self._consumer.end_offsets(list(partitions))
            ends = dict(reported)
            pending = {tp for tp, end in reported.items() if end > 0}
            if not pending:
                return ends
            self._consumer.assign(sorted(pending))
            try:
                for tp in pending:
                    self._consumer.seek(tp, reported[tp] - 1)
                deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
                while pending and time.monotonic() < deadline:
                    fetched = await self._consumer.getmany(
                        *pending, timeout_ms=PROBE_FETCH_MILLISECONDS
                    )
                    for tp, records in fetched.items():
                        if records:
                            ends[tp] = max(ends[tp], records[-1].offset + 1)
                            pending.discard(tp)
            finally:
                self._consumer.assign([])
            if pending:
                # Never guess: the reported end may be short, and a short end reads as lost data.
                raise LogEndUnknownError(f"could not read the last batch of {sorted(pending)}")
            return ends

    async def topic_end_offsets(self, topic: str) -> dict[int, int]:
        ends = await self.end_offsets(await self.partitions(topic))
        return {tp.partition: offset for tp, offset in ends.items()}
