"""The analytics consumer's loop: checkpoints live in Redis beside the aggregates (ADR 0017).

As a group member (the aggregator process) it claims each assigned partition in Redis (a new
epoch fences the previous owner) and seeks to the Redis checkpoint; Kafka's committed offsets
are advisory. Without a group (`ledgerbus analytics rebuild`) it takes every partition itself.
Each fetched batch of a partition is applied by the aggregate script in one step with its
checkpoint. A batch refused because the checkpoint moved (another owner went on) is re-claimed
and read again from the new checkpoint; one refused because a newer epoch owns the partition
is claimed again after a pause if the group still gives it to this member (a rebuild run
beside the group may have fenced it); a claim that failed is tried again the same way. A
refused generation (Redis lost its data, or a rebuild replaced it) makes the member claim every
partition in the generation Redis now names, all or none.

Once a second the member probes the true log ends and has Redis mark each partition whose
checkpoint reached its end as caught up as of the probe (the answers' `as_of`); the same call
names partitions whose checkpoint in Redis is not the one the member believes (Redis restarted
and lost its last writes), which are claimed again and re-read.
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
from shared.kafka.subscriber import HEARTBEAT_SHARE_OF_SESSION
from shared.logs import get_logger

FETCH_TIMEOUT_MILLISECONDS = 500
RECLAIM_AFTER_SECONDS = 2.0
"""A fenced partition still assigned to this member is claimed again after this long."""
GENERATION_CHECK_SECONDS = 1.0
"""How often an idle member looks whether Redis still holds its generation (a flush with no
new events would otherwise go unseen, and the answers would stay 503)."""
CAUGHT_UP_MARK_SECONDS = 1.0
"""How often the log ends are probed to mark partitions caught up (the answers' `as_of`)."""
HALT_RETRY_SECONDS = 30.0
"""A halted partition is read again this often (the event still fails unless cured)."""
REBUILD_CHECK_SECONDS = 0.5
"""How often a member writing a generation being built compares it with its target."""
RETRY_FIRST_SECONDS = 0.25
RETRY_MAX_SECONDS = 5.0

logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RebuildTarget:
    """Where a generation being built must reach before it answers: the log ends probed once,
    per (topic, partition)."""

    generation: str
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
        self._registries = dict(registries)
        self._store = store
        self._generation = ""
        """Chosen at start: the live generation, or the one being rebuilt."""
        self._claimed: dict[TopicPartition, Claimed] = {}
        self._unclaimed: dict[TopicPartition, float] = {}
        """Assigned partitions not held in Redis (fenced, or the claim failed), and when to
        claim them again (monotonic seconds)."""
        self._halted: dict[TopicPartition, float] = {}
        """Partitions stopped at an event they cannot apply, and since when."""
        self._reclaim_all = False
        """Set when the generation must change: every partition is claimed again, all or none."""
        self._checked = {"generation": 0.0, "rebuild": 0.0, "caught_up": 0.0}
        self._rebuild_target: RebuildTarget | None = None
        self.applied_total = 0
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=session_timeout_milliseconds,
            heartbeat_interval_ms=session_timeout_milliseconds // HEARTBEAT_SHARE_OF_SESSION,
            max_poll_records=BATCH_EVENTS_MAX,
        )  # fmt: skip
        self._probe = LogEndProbe(bootstrap, client_id="analytics-log-end")
        self._grouped = group_id is not None

    async def start(self, generation: str | None = None) -> None:
        """Join the group (or, without one, take every partition) writing `generation`, or the
        one Redis names as writable."""
        self._generation = generation or await self._store.writable_generation()
        await self._probe.start()
        if self._grouped:
            self._consumer.subscribe(list(self._registries), listener=self)
            await self._consumer.start()
            return
        await self._consumer.start()
        partitions = [
            partition for topic in self._registries
            for partition in await self._probe.partitions(topic)
        ]  # fmt: skip
        self._consumer.assign(partitions)
        for partition in partitions:
            await self._claim(partition)

    @property
    def generation(self) -> str:
        return self._generation

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._probe.stop()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for partition in revoked:
            for held in (self._claimed, self._unclaimed, self._halted):
                held.pop(partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for partition in assigned:
            await self._try_claim(partition)

    async def _try_claim(self, partition: TopicPartition) -> None:
        try:
            await self._claim(partition)
        except FencedError:  # only stale_generation: Redis names another one now
            self._reclaim_all = True
        except RedisError as error:
            logger.warning("analytics claim failed", partition=str(partition), error=repr(error))
            self._unclaimed[partition] = time.monotonic()

    async def _claim(self, partition: TopicPartition) -> None:
        ownership, checkpoint = await self._store.claim(
            self._generation, partition.topic, partition.partition
        )
        self._claimed[partition] = Claimed(ownership, checkpoint)
        self._unclaimed.pop(partition, None)
        self._consumer.seek(partition, checkpoint)

    async def _claim_all(self) -> None:
        """Claim every assigned partition in the generation Redis names now; nothing changes
        unless every claim succeeds (the claims of one member never mix generations)."""
        generation = await self._store.writable_generation()
        fresh = {}
        for partition in self._consumer.assignment():
            fresh[partition] = Claimed(
                *await self._store.claim(generation, partition.topic, partition.partition)
            )
        self._generation, self._claimed, self._reclaim_all = generation, fresh, False
        self._unclaimed.clear()
        for partition, claimed in fresh.items():
            self._consumer.seek(partition, claimed.next_offset)
        logger.warning("analytics claimed every partition", generation=generation)

    async def run_once(self) -> int:
        """Fetch once and apply every partition's batch; the number of records applied."""
        if self._reclaim_all:
            await self._claim_all()
        await self._retry_unclaimed()
        batches = await self._consumer.getmany(
            timeout_ms=FETCH_TIMEOUT_MILLISECONDS, max_records=BATCH_EVENTS_MAX
        )
        applied = 0
        for partition, records in batches.items():
            applied += await self._apply(partition, records)
        self._resume_halted()
        await self._mark_caught_up()
        self.applied_total += applied
        return applied

    async def _apply(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> int:
        claimed = self._claimed.get(partition)
        if claimed is None or self._reclaim_all:
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
            await self._try_claim(partition)
        elif error.reason == "stale_generation":
            self._reclaim_all = True
        else:
            self._claimed.pop(partition, None)
            self._unclaimed[partition] = time.monotonic() + RECLAIM_AFTER_SECONDS

    async def _retry_unclaimed(self) -> None:
        if not self._unclaimed:
            return
        assigned = self._consumer.assignment()
        for partition, due in list(self._unclaimed.items()):
            if partition not in assigned:
                self._unclaimed.pop(partition, None)
            elif time.monotonic() >= due:
                await self._try_claim(partition)

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

    def _due(self, check: str, every_seconds: float) -> bool:
        if time.monotonic() - self._checked[check] < every_seconds:
            return False
        self._checked[check] = time.monotonic()
        return True

    async def _mark_caught_up(self) -> None:
        """Probe the log ends of the claimed partitions and have Redis mark each whose
        checkpoint reached its end caught up as of the probe; claim again those whose
        checkpoint in Redis is not the one believed here."""
        if self._reclaim_all or not self._claimed:
            return
        if not self._due("caught_up", CAUGHT_UP_MARK_SECONDS):
            return
        probed_at = now_milliseconds()
        try:
            ends = await self._probe.end_offsets(list(self._claimed))
        except KafkaError as error:
            logger.debug("log ends not read; as_of waits", error=repr(error))
            return
        owned = [
            (claimed.ownership, claimed.next_offset, ends[partition])
            for partition, claimed in self._claimed.items()
            if partition in ends
        ]
        for topic, number in await self._store.mark_caught_up(self._generation, owned, probed_at):
            logger.warning("analytics checkpoint moved in Redis", topic=topic, partition=number)
            await self._try_claim(TopicPartition(topic, number))

    def _events(
        self, topic: str, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[AggregateEvent]:
        registry = self._registries[topic]
        events = []
        for record in records:
            parsed = registry.parse(record.value)
            if not isinstance(parsed, ParsedMessage):
                # The projector of this topic halts on such a record; analytics counts nothing
                # for it, and the audit reports it as a difference.
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

    async def follow_generation(self) -> None:
        """On an idle member, now and then: notice a generation Redis lost or replaced."""
        if not self._due("generation", GENERATION_CHECK_SECONDS):
            return
        if self._generation not in (await self._store.generation(), await self._store.building()):
            self._reclaim_all = True

    async def finish_rebuild_if_caught_up(self) -> bool:
        """While this member writes a generation being built: once every partition has reached
        the log end probed at the first check and the live generation's checkpoints (the
        switch script checks those), make it the live one. The target does not move, so a
        rebuild ends under steady traffic too. True when the answers switched."""
        if not self._due("rebuild", REBUILD_CHECK_SECONDS):
            return False
        if await self._store.generation() == self._generation:
            return False
        if self._rebuild_target is None or self._rebuild_target.generation != self._generation:
            ends = {}
            for topic in self._registries:
                found = await self._probe.end_offsets(await self._probe.partitions(topic))
                ends.update({(topic, p.partition): end for p, end in found.items()})
            self._rebuild_target = RebuildTarget(self._generation, ends)
        target = self._rebuild_target
        reached = await self._store.checkpoints(self._generation, list(target.ends))
        if any(reached[where] < end for where, end in target.ends.items()):
            return False
        return await self._store.finish_rebuild(self._generation, list(target.ends))

    async def run_until(self, stop: asyncio.Event) -> None:
        """Apply batches until `stop`. A Redis or broker outage is waited out; after a Redis
        one every partition is claimed again from the checkpoint Redis holds (it may have lost
        the last writes, or all of them)."""
        retry_seconds = RETRY_FIRST_SECONDS
        while not stop.is_set():
            try:
                if await self.run_once() == 0:
                    await self.follow_generation()
                await self.finish_rebuild_if_caught_up()
                retry_seconds = RETRY_FIRST_SECONDS
            except (RedisError, FencedError, KafkaError) as error:
                logger.warning("analytics waits for its dependencies", error=repr(error))
                await _sleep_unless(stop, retry_seconds)
                retry_seconds = min(retry_seconds * 2, RETRY_MAX_SECONDS)
                self._reclaim_all = self._reclaim_all or not isinstance(error, KafkaError)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
