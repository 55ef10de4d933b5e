"""The analytics consumer's loop: checkpoints live in Redis beside the aggregates (ADR 0017).

As a group member (the aggregator process) it claims each assigned partition in Redis (a new
epoch fences the previous owner) and seeks to the Redis checkpoint; Kafka's committed offsets
are advisory. Without a group (`ledgerbus analytics rebuild`) it takes every partition itself.
Each fetched batch of a partition is applied by the aggregate script in one step with its
checkpoint. A batch refused because the checkpoint moved (another owner went on) is re-claimed
and read again from the new checkpoint; one refused because a newer epoch owns the partition
is left alone, and claimed again after a pause if the group still gives it to this member (a
rebuild run beside the group may have fenced it). A refused generation (Redis lost its data,
or a rebuild replaced it) makes the member write the generation Redis now names.
"""

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from redis.exceptions import RedisError

from services.analytics.adapters.log_events import aggregate_event
from services.analytics.adapters.redis_aggregates import (
    BATCH_EVENTS_MAX,
    AggregateEvent,
    AggregateOverflowError,
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
FENCED_RECLAIM_SECONDS = 2.0
"""A fenced partition still assigned to this member is claimed again after this long."""
GENERATION_CHECK_SECONDS = 1.0
"""How often an idle member looks whether Redis still holds its generation (a flush with no
new events would otherwise go unseen, and the answers would stay 503)."""
HALT_RETRY_SECONDS = 30.0
"""A halted partition is read again this often (the event still fails unless cured)."""
REBUILD_CHECK_SECONDS = 0.5
"""How often a member writing a generation being built compares it with its target."""
REDIS_RETRY_FIRST_SECONDS = 0.25
REDIS_RETRY_MAX_SECONDS = 5.0

logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RebuildTarget:
    """Where a generation being built must reach before it answers: the log ends probed at
    `probed_at` (milliseconds), per (topic, partition)."""

    generation: str
    probed_at: int
    ends: dict[tuple[str, int], int]


@dataclass(slots=True)
class Claimed:
    ownership: Ownership
    next_offset: int


def now_milliseconds() -> int:
    return time.time_ns() // 1_000_000


class AggregateConsumer(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self, *, bootstrap: str, group_id: str | None, registries: Mapping[str, MessageRegistry],
        store: RedisAggregates, session_timeout_milliseconds: int,
    ) -> None:  # fmt: skip
        self._bootstrap = bootstrap
        self._registries = dict(registries)
        self._store = store
        self._generation = ""
        """Chosen at start: the live generation, or the one being rebuilt."""
        self._claimed: dict[TopicPartition, Claimed] = {}
        self._fenced: dict[TopicPartition, float] = {}
        self._halted: dict[TopicPartition, float] = {}
        """Partitions stopped at an event they cannot apply, and since when."""
        """Partitions a newer epoch took, and when (monotonic seconds)."""
        self._generation_checked = 0.0
        self._rebuild_checked = 0.0
        self._rebuild_target: RebuildTarget | None = None
        self.applied_total = 0
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=session_timeout_milliseconds,
            heartbeat_interval_ms=session_timeout_milliseconds // HEARTBEAT_SHARE_OF_SESSION,
            max_poll_records=BATCH_EVENTS_MAX,
        )  # fmt: skip
        self._grouped = group_id is not None

    async def start(self, generation: str | None = None) -> None:
        """Join the group (or, without one, take every partition) writing `generation`, or the
        one Redis names as writable."""
        self._generation = generation or await self._store.writable_generation()
        if self._grouped:
            self._consumer.subscribe(list(self._registries), listener=self)
            await self._consumer.start()
            return
        await self._consumer.start()
        await self._consumer.topics()  # fresh metadata: every topic's partitions
        partitions = [
            TopicPartition(topic, partition)
            for topic in self._registries
            for partition in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(partitions)
        for partition in partitions:
            await self._claim(partition)

    @property
    def generation(self) -> str:
        return self._generation

    async def stop(self) -> None:
        await self._consumer.stop()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for partition in revoked:
            self._claimed.pop(partition, None)
            self._fenced.pop(partition, None)
            self._halted.pop(partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for partition in assigned:
            await self._claim_or_restart(partition)

    async def _claim_or_restart(self, partition: TopicPartition) -> None:
        try:
            await self._claim(partition)
        except FencedError:  # only stale_generation: Redis names another one now
            await self._restart_generation()
        except RedisError as error:
            # Claimed again when Redis answers (run_until re-claims everything).
            logger.warning("analytics claim failed", partition=str(partition), error=repr(error))

    async def _claim(self, partition: TopicPartition) -> None:
        ownership, checkpoint = await self._store.claim(
            self._generation, partition.topic, partition.partition
        )
        self._claimed[partition] = Claimed(ownership, checkpoint)
        self._fenced.pop(partition, None)
        self._consumer.seek(partition, checkpoint)

    async def run_once(self) -> int:
        """Fetch once and apply every partition's batch; the number of records applied."""
        fetched_at = now_milliseconds()
        batches = await self._consumer.getmany(
            timeout_ms=FETCH_TIMEOUT_MILLISECONDS, max_records=BATCH_EVENTS_MAX
        )
        applied = 0
        for partition, records in batches.items():
            applied += await self._apply(partition, records, fetched_at)
        await self._mark_idle_partitions(set(batches), fetched_at)
        await self._reclaim_fenced()
        self._resume_halted()
        self.applied_total += applied
        return applied

    async def _apply(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]],
        fetched_at: int,
    ) -> int:  # fmt: skip
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
        highwater = self._consumer.highwater(partition)
        caught_up = fetched_at if highwater is not None and next_offset >= highwater else None
        events = self._events(partition.topic, pending)
        try:
            await self._store.apply_batch(
                claimed.ownership, claimed.next_offset, next_offset, events, caught_up
            )
        except FencedError as error:
            await self._refused(partition, error)
            return 0
        except AggregateOverflowError as error:
            self._halt(partition, claimed, error)
            return 0
        claimed.next_offset = next_offset
        await self._commit_advisory(partition, next_offset)
        return len(pending)

    async def _refused(self, partition: TopicPartition, error: FencedError) -> None:
        logger.warning("analytics batch refused", reason=str(error))
        if error.reason == "checkpoint_moved":
            await self._claim_or_restart(partition)
        elif error.reason == "stale_generation":
            await self._restart_generation()
        else:
            self._claimed.pop(partition, None)
            self._fenced[partition] = time.monotonic()

    def _halt(
        self, partition: TopicPartition, claimed: Claimed, error: AggregateOverflowError
    ) -> None:
        """Stop the partition at the event it cannot apply (those before it are applied); it
        is read again every HALT_RETRY_SECONDS, and `/ready` reports it stalled meanwhile."""
        logger.critical("analytics partition halted", error=str(error))
        claimed.next_offset = error.offset
        self._consumer.seek(partition, error.offset)
        self._consumer.pause(partition)
        self._halted[partition] = time.monotonic()

    def _resume_halted(self) -> None:
        for partition, since in list(self._halted.items()):
            if time.monotonic() - since >= HALT_RETRY_SECONDS:
                del self._halted[partition]
                self._consumer.resume(partition)

    async def _mark_idle_partitions(self, fetched: set[TopicPartition], fetched_at: int) -> None:
        """Partitions that returned nothing and stand at their log end are caught up too."""
        idle = []
        for partition, claimed in self._claimed.items():
            if partition in fetched or partition in self._halted:
                continue
            highwater = self._consumer.highwater(partition)
            if highwater is None or claimed.next_offset >= highwater:
                idle.append(claimed.ownership)
        if idle:
            await self._store.mark_caught_up(idle, fetched_at)

    async def _reclaim_fenced(self) -> None:
        if not self._fenced:
            return
        assigned = self._consumer.assignment()
        for partition, since in list(self._fenced.items()):
            if partition not in assigned:
                self._fenced.pop(partition, None)
            elif time.monotonic() - since >= FENCED_RECLAIM_SECONDS:
                await self._claim_or_restart(partition)

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
                events.append(replace(event, offset=record.offset))
        return events

    async def _commit_advisory(self, partition: TopicPartition, offset: int) -> None:
        if not self._grouped:
            return
        try:
            await self._consumer.commit({partition: offset})
        except (KafkaError, AssertionError) as error:
            logger.debug("kafka offset commit skipped", error=repr(error))

    async def _restart_generation(self) -> None:
        """Redis no longer holds the generation this member wrote: write the one it names now
        (the live one, or the one being rebuilt, begun now if need be), from its checkpoints,
        for every partition this member holds."""
        self._generation = await self._store.writable_generation()
        logger.warning("analytics writes another generation", generation=self._generation)
        for partition in self._consumer.assignment():
            await self._claim(partition)

    async def follow_generation(self) -> None:
        """On an idle member, now and then: notice a generation Redis lost or replaced."""
        if time.monotonic() - self._generation_checked < GENERATION_CHECK_SECONDS:
            return
        self._generation_checked = time.monotonic()
        if self._generation not in (await self._store.generation(), await self._store.building()):
            await self._restart_generation()

    async def _log_ends(self) -> dict[tuple[str, int], int]:
        probe = LogEndProbe(self._bootstrap, client_id="analytics-log-end")
        await probe.start()
        try:
            ends = {}
            for topic in self._registries:
                found = await probe.end_offsets(await probe.partitions(topic))
                ends.update({(topic, p.partition): end for p, end in found.items()})
            return ends
        finally:
            await probe.stop()

    async def finish_rebuild_if_caught_up(self) -> bool:
        """While this member writes a generation being built: once every partition of every
        topic has reached the log end probed when the check first ran for it, make it the live
        one (its answers then stand for that time; the target does not move, so a rebuild ends
        under steady traffic too). Checked at most every REBUILD_CHECK_SECONDS. True when the
        answers switched."""
        if time.monotonic() - self._rebuild_checked < REBUILD_CHECK_SECONDS:
            return False
        self._rebuild_checked = time.monotonic()
        if await self._store.generation() == self._generation:
            return False
        if self._rebuild_target is None or self._rebuild_target.generation != self._generation:
            probed_at = now_milliseconds()
            self._rebuild_target = RebuildTarget(
                self._generation, probed_at, await self._log_ends()
            )
        target = self._rebuild_target
        reached = await self._store.checkpoints(self._generation, list(target.ends))
        if any(reached[where] < end for where, end in target.ends.items()):
            return False
        await self._store.mark_caught_up(
            [claimed.ownership for claimed in self._claimed.values()], target.probed_at
        )
        return await self._store.finish_rebuild(self._generation)

    async def run_until(self, stop: asyncio.Event) -> None:
        """Apply batches until `stop`; a Redis outage is waited out, then every partition is
        claimed again from the checkpoint Redis holds (it may have lost the last writes)."""
        retry_seconds = REDIS_RETRY_FIRST_SECONDS
        while not stop.is_set():
            try:
                if await self.run_once() == 0:
                    await self.follow_generation()
                await self.finish_rebuild_if_caught_up()
                retry_seconds = REDIS_RETRY_FIRST_SECONDS
            except FencedError as error:  # a claim met a generation replaced meanwhile
                logger.warning("analytics claims again", reason=str(error))
                await self._reclaim_all_after_outage()
            except RedisError as error:
                logger.warning("analytics waits for Redis", error=repr(error))
                await _sleep_unless(stop, retry_seconds)
                retry_seconds = min(retry_seconds * 2, REDIS_RETRY_MAX_SECONDS)
                await self._reclaim_all_after_outage()

    async def _reclaim_all_after_outage(self) -> None:
        try:
            await self._restart_generation()
        except (RedisError, FencedError) as error:
            logger.debug("Redis still down", error=repr(error))


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
