"""Replaying an events topic from offset 0 through a `ProjectionSet`, in memory.

Used by `ledgerbus audit` and `ledgerbus projections rebuild`. It folds with the same folds and
the same stream tracking as the live projector and writes with COPY in large batches, the
fastest way PostgreSQL takes rows. State rows stay in memory until the end (one per key);
appended rows are flushed as they accumulate. The tracker keeps every (stream, sequence)'s
event id, so memory grows with the number of events (about 100 bytes each).
"""

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.contracts.registry import RejectedRecord
from shared.engine.projection import (
    APPLIED_EVENTS,
    Applied,
    AppliedEventRow,
    ProjectionSet,
    StreamTracker,
)
from shared.engine.tables import Table, TableStore
from shared.kafka.log_end import LogEndProbe
from shared.kafka.positions import format_position

REPLAY_FETCH_MAX_RECORDS = 20_000
REPLAY_COPY_BATCH_ROWS = 50_000
REPLAY_FETCH_TIMEOUT_MILLISECONDS = 1_000
REPLAY_IDLE_FETCHES_MAX = 30
"""Fetches in a row that return nothing before the replay gives up on reaching its target."""
REPLAY_PARTITION_FETCH_BYTES = 8 * 1024 * 1024

RowSink = Callable[[Table, list[Any]], None]
Observer = Callable[[Any, Applied], None]


class ReplayStalledError(RuntimeError):
    pass


@dataclass(slots=True)
class ReplayState:
    """The fold's state and what the log said along the way."""

    tracker: StreamTracker = field(default_factory=StreamTracker)
    states: list[dict[tuple[Any, ...], Any]] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    """Every valid event id read (folded or not), for checks such as "a decision with no
    event in the log"."""
    events_applied: int = 0
    duplicates: int = 0
    invalid_records: int = 0
    after_cut: int = 0
    positions: dict[int, int] = field(default_factory=dict)


class Replayer:
    """Reads one topic's partitions up to target offsets and folds what it reads."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        projections: ProjectionSet,
        until: datetime | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.topic = topic
        self.projections = projections
        self.until = until
        self._observe = observe
        """Sees every admitted event, in log order (an audit's own checks)."""
        self.state = ReplayState(states=[{} for _ in projections.folds])
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            max_partition_fetch_bytes=REPLAY_PARTITION_FETCH_BYTES,
            fetch_max_bytes=4 * REPLAY_PARTITION_FETCH_BYTES,
        )
        self.log_end = LogEndProbe(bootstrap_servers, client_id="ledgerbus-replay-log-end")
        self._partitions: list[TopicPartition] = []

    async def start(self) -> dict[int, int]:
        """Connect, assign every partition from offset 0; returns the current end offsets."""
        await self._consumer.start()
        await self.log_end.start()
        self._partitions = await self.log_end.partitions(self.topic)
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self.state.positions = {tp.partition: 0 for tp in self._partitions}
        return await self.ends()

    async def ends(self) -> dict[int, int]:
        ends = await self.log_end.end_offsets(self._partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def stop(self) -> None:
        await self.log_end.stop()
        await self._consumer.stop()

    async def advance(
        self,
        targets: Mapping[int, int],
        sink: RowSink,
        progress: Callable[[int], None] = lambda _: None,
        *,
        fold: bool = True,
    ) -> None:
        """Fold every record below `targets` (or only note its id when `fold` is off), handing
        appended rows to `sink` as they accumulate.

        A partition that reaches its target is paused and put back exactly at the target, so
        records fetched beyond it are read again by a later `advance` (the rebuild's catch-up).
        """
        self._position_partitions(targets)
        buffers: dict[Table, list[Any]] = {}
        idle = 0
        while any(self.state.positions.get(p, 0) < target for p, target in targets.items()):
            fetched = await self._consumer.getmany(
                timeout_ms=REPLAY_FETCH_TIMEOUT_MILLISECONDS, max_records=REPLAY_FETCH_MAX_RECORDS
            )
            idle = 0 if fetched else idle + 1
            if idle > REPLAY_IDLE_FETCHES_MAX:
                raise ReplayStalledError(f"{self.topic}: the log ended before the target offsets")
            for topic_partition, records in fetched.items():
                partition = topic_partition.partition
                target = targets.get(partition, 0)
                for record in records:
                    if record.offset >= target:
                        break
                    self._read(partition, record.offset, record.value, buffers, fold=fold)
                    self.state.positions[partition] = record.offset + 1
                if self.state.positions[partition] >= target:
                    self._consumer.seek(topic_partition, self.state.positions[partition])
                    self._consumer.pause(topic_partition)
                progress(len(records))
            for table, rows in list(buffers.items()):
                if len(rows) >= REPLAY_COPY_BATCH_ROWS:
                    sink(table, buffers.pop(table))
        for table, rows in buffers.items():
            sink(table, rows)

    def _position_partitions(self, targets: Mapping[int, int]) -> None:
        for topic_partition in self._partitions:
            position = self.state.positions.get(topic_partition.partition, 0)
            if position < targets.get(topic_partition.partition, 0):
                self._consumer.seek(topic_partition, position)
                self._consumer.resume(topic_partition)
            else:
                self._consumer.pause(topic_partition)

    def _read(
        self,
        partition: int,
        offset: int,
        value: bytes | None,
        buffers: dict[Table, list[Any]],
        *,
        fold: bool,
    ) -> None:
        projections, state = self.projections, self.state
        parsed = projections.registry.parse(value)
        if isinstance(parsed, RejectedRecord):
            state.invalid_records += 1  # The live projector dead-lettered it the same way.
            return
        event, event_id = parsed.data, parsed.envelope.id
        state.event_ids.add(event_id)
        if not fold:
            return
        if self.until is not None and projections.time_of(event) > self.until:
            state.after_cut += 1
            return
        stream, sequence = projections.stream_of(event)
        if not state.tracker.admit(stream, sequence, event_id):
            state.duplicates += 1
            return
        buffers.setdefault(APPLIED_EVENTS, []).append(AppliedEventRow(stream, sequence, event_id))
        applied = Applied(event_id, format_position(partition, offset))
        if self._observe is not None:
            self._observe(event, applied)
        for fold_index, each in enumerate(projections.folds):
            key = each.state_key(event)
            if key is None:
                continue
            rows = state.states[fold_index]
            result = each.apply(rows.get(key), event, applied)
            rows[key] = result.state
            for table, row in result.appended:
                buffers.setdefault(table, []).append(row)
        state.events_applied += 1


async def replay_into(
    connection: asyncpg.Connection,
    store: TableStore,
    replayer: Replayer,
    targets: Mapping[int, int],
    progress: Callable[[int], None] = lambda _: None,
) -> None:
    """Fill `store`'s (already created) tables with the fold of the log up to `targets`."""
    in_flight: asyncio.Future[None] | None = None

    def copy(table: Table, rows: list[Any]) -> None:
        # One COPY runs while the next chunk is folded; the one before it must finish first.
        nonlocal in_flight
        previous = in_flight
        in_flight = asyncio.ensure_future(_after(previous, store.copy(connection, table, rows)))

    try:
        await replayer.advance(targets, copy, progress)
    except BaseException:
        # The connection runs one operation at a time: let the COPY finish before cleanup.
        if in_flight is not None:
            await asyncio.gather(in_flight, return_exceptions=True)
        raise
    if in_flight is not None:
        await in_flight
    for fold, rows in zip(replayer.projections.folds, replayer.state.states, strict=True):
        await store.copy(connection, fold.state, rows.values())


async def _after(previous: asyncio.Future[None] | None, work: Coroutine[Any, Any, None]) -> None:
    if previous is not None:
        await previous
    await work
