"""The live projector: a partition handler that folds a batch of events into the read models.

Per batch, in the owner's transaction (so rows and checkpoint commit together): parse the
events (an invalid record goes to the topic's DLQ), admit each by its stream and sequence (a
repeat is skipped, a contradiction halts), run every fold over the admitted events with their
state rows loaded in one statement per table, write the changed rows and the admitted events,
and announce the partition's new checkpoint with NOTIFY.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import asyncpg

from shared.contracts.registry import RejectedRecord
from shared.engine.dead_letters import dead_letter
from shared.engine.messages import OutgoingMessage
from shared.engine.partition_handler import HandlerResult, PartitionBatch
from shared.engine.projection import (
    APPLIED_EVENTS,
    Applied,
    AppliedEventRow,
    Fold,
    ProjectionSet,
    StreamTracker,
)
from shared.engine.tables import Table, TableStore
from shared.kafka.positions import format_position

Admitted = tuple[Any, Applied]


class Projector:
    def __init__(self, projections: ProjectionSet) -> None:
        self.projections = projections
        self.store = TableStore(projections.schema)

    async def handle(self, connection: asyncpg.Connection, batch: PartitionBatch) -> HandlerResult:
        events: list[tuple[Any, Applied]] = []
        dead: list[OutgoingMessage] = []
        for record in batch.records:
            parsed = self.projections.registry.parse(record.value)
            if isinstance(parsed, RejectedRecord):
                dead.append(dead_letter(record, parsed.code, parsed.message))
                continue
            position = format_position(record.partition, record.offset)
            events.append((parsed.data, Applied(parsed.envelope.id, position)))
        admitted, applied_rows = await self._admit(connection, events)
        for fold in self.projections.folds:
            await self._fold(connection, fold, admitted)
        await self.store.insert(connection, APPLIED_EVENTS, applied_rows)
        next_offset = batch.records[-1].offset + 1
        await connection.execute(
            "SELECT pg_notify($1, $2)",
            self.projections.positions_channel,
            format_position(batch.partition, next_offset),
        )
        return HandlerResult(dead_letters=dead)

    async def _admit(
        self, connection: asyncpg.Connection, events: Sequence[tuple[Any, Applied]]
    ) -> tuple[list[Admitted], list[AppliedEventRow]]:
        lowest: dict[str, int] = {}
        for event, _ in events:
            stream, sequence = self.projections.stream_of(event)
            lowest[stream] = min(sequence, lowest.get(stream, sequence))
        tracker = await self._tracker(connection, lowest)
        admitted: list[Admitted] = []
        rows: list[AppliedEventRow] = []
        for event, applied in events:
            stream, sequence = self.projections.stream_of(event)
            if tracker.admit(stream, sequence, applied.event_id):
                admitted.append((event, applied))
                rows.append(AppliedEventRow(stream, sequence, applied.event_id))
        return admitted, rows

    async def _tracker(
        self, connection: asyncpg.Connection, lowest: dict[str, int]
    ) -> StreamTracker:
        """Each stream's last applied event, plus the ids of any sequence this batch repeats."""
        tracker = StreamTracker()
        if not lowest:
            return tracker
        table = self.store.qualified(APPLIED_EVENTS)
        rows = await connection.fetch(
            f"SELECT k.stream, e.sequence, e.event_id FROM unnest($1::text[], $2::bigint[])"
            f" AS k(stream, low) CROSS JOIN LATERAL (SELECT sequence, event_id FROM {table} a"
            " WHERE a.stream = k.stream AND a.sequence >= k.low UNION SELECT sequence, event_id"
            f" FROM (SELECT sequence, event_id FROM {table} b WHERE b.stream = k.stream"
            " ORDER BY sequence DESC LIMIT 1) AS last) AS e",
            list(lowest),
            list(lowest.values()),
        )
        for row in rows:
            tracker.seed(row["stream"], row["sequence"], row["event_id"])
        return tracker

    async def _fold(
        self, connection: asyncpg.Connection, fold: Fold, admitted: Sequence[Admitted]
    ) -> None:
        keyed = [(fold.state_key(event), event, applied) for event, applied in admitted]
        mine = [(key, event, applied) for key, event, applied in keyed if key is not None]
        if not mine:
            return
        rows = await self.store.load(connection, fold.state, sorted({key for key, _, _ in mine}))
        changed: dict[tuple[Any, ...], Any] = {}
        appended: dict[Table, list[Any]] = defaultdict(list)
        for key, event, applied in mine:
            result = fold.apply(rows.get(key), event, applied)
            rows[key] = changed[key] = result.state
            for table, row in result.appended:
                appended[table].append(row)
        for table, table_rows in appended.items():
            await self.store.insert(connection, table, table_rows)
        await self.store.upsert(connection, fold.state, list(changed.values()))
