"""Reads for the gateway: balances, entries and the projector's checkpoints."""

from uuid import UUID

import asyncpg

from services.ledger.settings import EVENTS_TOPIC, PROJECTOR_NAME


class LedgerReads:
    def __init__(self, pool: asyncpg.Pool, events_topic: str = EVENTS_TOPIC) -> None:
        self._pool = pool
        self._events_topic = events_topic

    async def balance(self, app: str, owner_id: str, partition: int) -> asyncpg.Record:
        """The owner's row (or NULLs) with its partition's checkpoint, read in one snapshot."""
        row = await self._pool.fetchrow(
            "SELECT b.balance, b.last_updated, b.position, c.next_offset AS checkpoint"
            " FROM (SELECT 1) AS one"
            " LEFT JOIN ledger.balances b ON b.app = $1 AND b.owner_id = $2"
            " LEFT JOIN ledger.checkpoints c ON c.consumer = $3 AND c.topic = $4"
            " AND c.partition = $5",
            app,
            owner_id,
            PROJECTOR_NAME,
            self._events_topic,
            partition,
        )
        assert row is not None
        return row

    async def entries(
        self, app: str, owner_id: str, limit: int, before_sequence: int | None
    ) -> list[asyncpg.Record]:
        return list(
            await self._pool.fetch(
                "SELECT id, app, owner_id, operation, amount, nonce, created_on, balance, sequence,"
                " position FROM ledger.entries WHERE app = $1 AND owner_id = $2"
                " AND ($3::bigint IS NULL OR sequence < $3) ORDER BY sequence DESC LIMIT $4",
                app,
                owner_id,
                before_sequence,
                limit,
            )
        )

    async def entry_sequence(self, app: str, owner_id: str, entry_id: UUID) -> int | None:
        value = await self._pool.fetchval(
            "SELECT sequence FROM ledger.entries WHERE id = $1 AND app = $2 AND owner_id = $3",
            entry_id,
            app,
            owner_id,
        )
        return None if value is None else int(value)
