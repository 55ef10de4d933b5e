"""Replaying `ledger.events` from offset 0 into a scratch copy of the read model.

Used by `ledgerbus audit` and `ledgerbus projections rebuild ledger`. It folds with the same
`apply_event` as the live projector and writes with COPY in large batches, the fastest way
PostgreSQL takes rows. Balances stay in memory until the end (one row per owner); entries are
flushed as they accumulate, so memory stays bounded by the number of owners.
"""

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.ledger.projections.ledger_view import BalanceRow, EntryRow, apply_event
from services.ledger.projections.view_store import ViewStore
from shared.contracts.ledger import LEDGER_EVENTS, EntryRecorded, EntryRejected
from shared.contracts.registry import RejectedRecord
from shared.kafka.log_end import LogEndProbe
from shared.kafka.positions import format_position

REPLAY_FETCH_MAX_RECORDS = 20_000
REPLAY_COPY_BATCH_ROWS = 50_000
REPLAY_FETCH_TIMEOUT_MILLISECONDS = 1_000
REPLAY_IDLE_FETCHES_MAX = 30
"""Fetches in a row that return nothing before the replay gives up on reaching its target."""
REPLAY_PARTITION_FETCH_BYTES = 8 * 1024 * 1024


class ReplayStalledError(RuntimeError):
    pass


@dataclass(slots=True)
class Replay:
    """The fold's state: owners' rows, and what the log said about each nonce."""

    rows: dict[tuple[str, str], BalanceRow] = field(default_factory=dict)
    nonce_events: dict[tuple[str, str], str] = field(default_factory=dict)
    conflicting_nonces: list[str] = field(default_factory=list)
    events_applied: int = 0
    duplicates: int = 0
    invalid_records: int = 0
    after_cut: int = 0
    positions: dict[int, int] = field(default_factory=dict)


class Replayer:
    """Reads one topic's partitions up to target offsets and folds what it reads."""

    def __init__(self, bootstrap_servers: str, topic: str, until: datetime | None = None) -> None:
        self.topic = topic
        self.until = until
        self.state = Replay()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            max_partition_fetch_bytes=REPLAY_PARTITION_FETCH_BYTES,
            fetch_max_bytes=4 * REPLAY_PARTITION_FETCH_BYTES,
        )
        self._log_end = LogEndProbe(bootstrap_servers, client_id="ledgerbus-replay-log-end")
        self._partitions: list[TopicPartition] = []

    async def start(self) -> dict[int, int]:
        """Connect, assign every partition from offset 0; returns the current end offsets."""
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self.topic)
        if not partitions:
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self.topic) or set()
        topic_partitions = [
            TopicPartition(self.topic, partition) for partition in sorted(partitions)
        ]
        self._partitions = topic_partitions
        self._consumer.assign(topic_partitions)
        await self._consumer.seek_to_beginning(*topic_partitions)
        await self._log_end.start()
        ends = await self._log_end.end_offsets(topic_partitions)
        self.state.positions = {tp.partition: 0 for tp in topic_partitions}
        return {tp.partition: offset for tp, offset in ends.items()}

    async def stop(self) -> None:
        await self._log_end.stop()
        await self._consumer.stop()

    async def advance(
        self,
        targets: Mapping[int, int],
        on_entries: Callable[[list[EntryRow]], asyncio.Future[None] | None],
        progress: Callable[[int], None] = lambda _: None,
    ) -> None:
        """Fold every record below `targets`; hand entries to `on_entries` as they accumulate.

        A partition that reaches its target is paused and put back exactly at the target, so
        records fetched beyond it are read again by a later `advance` (the rebuild's catch-up).
        """
        self._position_partitions(targets)
        buffer: list[EntryRow] = []
        idle = 0
        while any(self.state.positions.get(p, 0) < target for p, target in targets.items()):
            fetched = await self._consumer.getmany(
                timeout_ms=REPLAY_FETCH_TIMEOUT_MILLISECONDS, max_records=REPLAY_FETCH_MAX_RECORDS
            )
            idle = 0 if fetched else idle + 1
            if idle > REPLAY_IDLE_FETCHES_MAX:
                raise ReplayStalledError(f"{self.topic}: the log ended before the target offsets")
            for topic_partition, records in fetched.items():
                target = targets.get(topic_partition.partition, 0)
                for record in records:
                    if record.offset >= target:
                        break
                    self._fold(record.partition, record.offset, record.value, buffer)
                    self.state.positions[record.partition] = record.offset + 1
                if self.state.positions[topic_partition.partition] >= target:
                    self._consumer.seek(
                        topic_partition, self.state.positions[topic_partition.partition]
                    )
                    self._consumer.pause(topic_partition)
                progress(len(records))
            if len(buffer) >= REPLAY_COPY_BATCH_ROWS:
                await _deliver(on_entries, buffer)
                buffer = []
        if buffer:
            await _deliver(on_entries, buffer)

    def _position_partitions(self, targets: Mapping[int, int]) -> None:
        for topic_partition in self._partitions:
            position = self.state.positions.get(topic_partition.partition, 0)
            if position < targets.get(topic_partition.partition, 0):
                self._consumer.seek(topic_partition, position)
                self._consumer.resume(topic_partition)
            else:
                self._consumer.pause(topic_partition)

    def _fold(
        self, partition: int, offset: int, value: bytes | None, buffer: list[EntryRow]
    ) -> None:
        parsed = LEDGER_EVENTS.parse(value)
        if isinstance(parsed, RejectedRecord):
            self.state.invalid_records += 1  # The live projector dead-lettered it the same way.
            return
        event = parsed.data
        assert type(event) is EntryRecorded or type(event) is EntryRejected
        if self.until is not None and _event_time(event) > self.until:
            self.state.after_cut += 1
            return
        nonce = (event.app, event.nonce)
        first_event = self.state.nonce_events.setdefault(nonce, parsed.envelope.id)
        if first_event != parsed.envelope.id:
            self.state.conflicting_nonces.append(f"{event.app}:{event.nonce}")
        key = (event.app, event.owner_id)
        position = format_position(partition, offset)
        applied = apply_event(
            self.state.rows.get(key), event, event_id=parsed.envelope.id, position=position
        )
        if applied is None:
            self.state.duplicates += 1
            return
        self.state.rows[key] = applied[0]
        self.state.events_applied += 1
        if applied[1] is not None:
            buffer.append(applied[1])


def _event_time(event: EntryRecorded | EntryRejected) -> datetime:
    return event.created_on if isinstance(event, EntryRecorded) else event.rejected_on


async def _deliver(
    on_entries: Callable[[list[EntryRow]], asyncio.Future[None] | None], rows: list[EntryRow]
) -> None:
    result = on_entries(rows)
    if result is not None:
        await result


async def replay_into_scratch(
    connection: asyncpg.Connection,
    store: ViewStore,
    replayer: Replayer,
    targets: Mapping[int, int],
    progress: Callable[[int], None] = lambda _: None,
) -> None:
    """Create the scratch tables and fill them with the fold of the log up to `targets`."""
    await store.create_like_live(connection)
    in_flight: asyncio.Future[None] | None = None

    def copy(rows: list[EntryRow]) -> asyncio.Future[None] | None:
        # One COPY runs while the next chunk is folded; the one before it must finish first.
        nonlocal in_flight
        previous = in_flight
        in_flight = asyncio.ensure_future(_after(previous, store.copy_entries(connection, rows)))
        return None

    try:
        await replayer.advance(targets, copy, progress)
    except BaseException:
        # The connection runs one operation at a time: let the COPY finish before cleanup.
        if in_flight is not None:
            await asyncio.gather(in_flight, return_exceptions=True)
        raise
    if in_flight is not None:
        await in_flight
    await store.copy_balances(connection, replayer.state.rows.values())


async def _after(previous: asyncio.Future[None] | None, work: Coroutine[Any, Any, None]) -> None:
    if previous is not None:
        await previous
    await work
