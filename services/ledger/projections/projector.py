"""Use case: apply one `ledger.events` partition batch to the live read model.

Runs inside the partition owner's transaction, so rows and checkpoint commit together. A
record that is not a valid ledger event goes to `ledger.events.dlq`; the partition flows on.
"""

from collections.abc import Sequence
from typing import Any

import asyncpg

from services.ledger.projections.ledger_view import BalanceRow, EntryRow, apply_event
from services.ledger.projections.view_store import POSITIONS_CHANNEL, ViewStore
from shared.contracts.ledger import LEDGER_EVENTS, EntryRecorded, EntryRejected
from shared.contracts.registry import RejectedRecord
from shared.kafka.dead_letters import dead_letter
from shared.kafka.partition_handler import HandlerResult, PartitionBatch
from shared.kafka.positions import format_position
from shared.kafka.producer import OutgoingMessage, PublishedMessage


class LedgerViewProjector:
    def __init__(self, store: ViewStore) -> None:
        self._store = store

    async def handle(self, connection: asyncpg.Connection, batch: PartitionBatch) -> HandlerResult:
        events: list[tuple[EntryRecorded | EntryRejected, str, str]] = []
        dead: list[OutgoingMessage] = []
        for record in batch.records:
            parsed = LEDGER_EVENTS.parse(record.value)
            if isinstance(parsed, RejectedRecord):
                dead.append(dead_letter(record, parsed.code, parsed.message))
                continue
            assert type(parsed.data) is EntryRecorded or type(parsed.data) is EntryRejected
            position = format_position(record.partition, record.offset)
            events.append((parsed.data, parsed.envelope.id, position))
        owners = sorted({(event.app, event.owner_id) for event, _, _ in events})
        rows = await self._store.load_balances(connection, owners)
        changed: dict[tuple[str, str], BalanceRow] = {}
        entries: list[EntryRow] = []
        for event, event_id, position in events:
            key = (event.app, event.owner_id)
            applied = apply_event(rows.get(key), event, event_id=event_id, position=position)
            if applied is None:
                continue
            rows[key] = changed[key] = applied[0]
            if applied[1] is not None:
                entries.append(applied[1])
        await self._store.write(connection, list(changed.values()), entries)
        next_offset = batch.records[-1].offset + 1
        await connection.execute(
            "SELECT pg_notify($1, $2)",
            POSITIONS_CHANNEL,
            format_position(batch.partition, next_offset),
        )
        return HandlerResult(dead_letters=dead)

    async def after_publish(
        self, connection: asyncpg.Connection, published: Sequence[PublishedMessage], context: Any
    ) -> None:
        """The projector publishes nothing but dead letters, which never pass the outbox."""
