"""The analytics consumer's loop: a group member whose checkpoints live in Redis (ADR 0017).

On assignment it claims each partition in Redis (a new epoch fences the previous owner) and
seeks to the Redis checkpoint; Kafka's committed offsets are advisory. Each fetched batch of a
partition is applied by the aggregate script in one step with its checkpoint. A batch the
script refuses because the checkpoint moved (another owner went on) is re-claimed and re-read
from the new checkpoint; one refused because this member was fenced is dropped until the group
hands the partition back.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from services.analytics.adapters.log_events import aggregate_event
from services.analytics.adapters.redis_aggregates import (
    BATCH_EVENTS_MAX,
    AggregateEvent,
    FencedError,
    Ownership,
    RedisAggregates,
)
from shared.contracts.registry import MessageRegistry, ParsedMessage
from shared.kafka.log_end import LogEndProbe
from shared.logs import get_logger

FETCH_TIMEOUT_MILLISECONDS = 500
HEARTBEAT_SHARE_OF_SESSION = 3
"""Heartbeats at a third of the session timeout, as Kafka recommends."""

logger = get_logger(__name__)


@dataclass(slots=True)
class Claimed:
    ownership: Ownership
    next_offset: int


class AggregateConsumer(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self, *, bootstrap: str, group_id: str, registries: Mapping[str, MessageRegistry],
        store: RedisAggregates, session_timeout_milliseconds: int,
    ) -> None:  # fmt: skip
        self._bootstrap = bootstrap
        self._registries = dict(registries)
        self._store = store
        self._generation = ""
        """Chosen at start: the live generation, or the one being rebuilt."""
        self._claimed: dict[TopicPartition, Claimed] = {}
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=session_timeout_milliseconds,
            heartbeat_interval_ms=session_timeout_milliseconds // HEARTBEAT_SHARE_OF_SESSION,
            max_poll_records=BATCH_EVENTS_MAX,
        )  # fmt: skip

    async def start(self) -> None:
        self._generation = await self._store.writable_generation()
        self._consumer.subscribe(list(self._registries), listener=self)
        await self._consumer.start()

    @property
    def generation(self) -> str:
        return self._generation

    async def stop(self) -> None:
        await self._consumer.stop()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for partition in revoked:
            self._claimed.pop(partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for partition in assigned:
            await self._claim(partition)

    async def _claim(self, partition: TopicPartition) -> None:
        ownership, checkpoint = await self._store.claim(
            self._generation, partition.topic, partition.partition
        )
        self._claimed[partition] = Claimed(ownership, checkpoint)
        self._consumer.seek(partition, checkpoint)

    async def run_once(self) -> int:
        """Fetch once and apply every partition's batch; the number of records applied."""
        batches = await self._consumer.getmany(
            timeout_ms=FETCH_TIMEOUT_MILLISECONDS, max_records=BATCH_EVENTS_MAX
        )
        applied = 0
        for partition, records in batches.items():
            applied += await self._apply(partition, records)
        return applied

    async def _apply(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> int:
        claimed = self._claimed.get(partition)
        if claimed is None:
            return 0
        pending = [record for record in records if record.offset >= claimed.next_offset]
        if not pending:
            return 0
        if pending[0].offset != claimed.next_offset:
            self._consumer.seek(partition, claimed.next_offset)  # a gap: read it again
            return 0
        next_offset = pending[-1].offset + 1
        events = self._events(partition.topic, pending)
        try:
            await self._store.apply_batch(
                claimed.ownership, claimed.next_offset, next_offset, events
            )
        except FencedError as error:
            logger.warning("analytics batch refused", reason=str(error))
            if "checkpoint_moved" in str(error):
                await self._claim(partition)
            elif "stale_generation" in str(error):
                await self._restart_generation()
            else:
                self._claimed.pop(partition, None)
            return 0
        claimed.next_offset = next_offset
        await self._commit_advisory(partition, next_offset)
        return len(pending)

    def _events(
        self, topic: str, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[AggregateEvent]:
        registry = self._registries[topic]
        events = []
        for record in records:
            parsed = registry.parse(record.value)
            if not isinstance(parsed, ParsedMessage):
                # The projector of this topic halts on such a record; analytics counts nothing
                # for it, and the audit names the difference.
                logger.warning("analytics skipped an unreadable event", code=parsed.code)
                continue
            event = aggregate_event(parsed.data, parsed.envelope.id)
            if event is not None:
                events.append(event)
        return events

    async def _commit_advisory(self, partition: TopicPartition, offset: int) -> None:
        try:
            await self._consumer.commit({partition: offset})
        except (KafkaError, AssertionError) as error:
            logger.debug("kafka offset commit skipped", error=repr(error))

    async def _restart_generation(self) -> None:
        """Redis lost the generation this member wrote: write the one being rebuilt (begun
        now if need be), from its checkpoints, for every partition this member holds."""
        self._generation = await self._store.writable_generation()
        logger.warning("analytics rebuilds its aggregates", generation=self._generation)
        for partition in list(self._claimed):
            await self._claim(partition)

    async def finish_rebuild_if_caught_up(self) -> bool:
        """Once every partition of every topic is applied up to its log end in the generation
        being built, make it the live one. True when the answers switched."""
        if await self._store.generation() == self._generation:
            return False
        probe = LogEndProbe(self._bootstrap, client_id="analytics-log-end")
        await probe.start()
        try:
            for topic in self._registries:
                ends = await probe.end_offsets(await probe.partitions(topic))
                for partition, end in ends.items():
                    checkpoint = await self._store.checkpoint(
                        self._generation, topic, partition.partition
                    )
                    if checkpoint < end:
                        return False
        finally:
            await probe.stop()
        return await self._store.finish_rebuild(self._generation)

    async def run_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            applied = await self.run_once()
            if applied == 0:
                await self.finish_rebuild_if_caught_up()
