"""Queries on the wallet's read models, for the gateway's routes (never for decisions)."""

from datetime import datetime
from uuid import UUID

import asyncpg

from services.wallet.projections.wallet_view import SYSTEM_TOTALS_SQL
from services.wallet.settings import PROJECTOR_NAME

MOVEMENT_COLUMNS = (
    "movement_id, kind, direction, amount, balance, transfer_id, counterparty_user_id,"
    " created_at, sequence, position"
)
RECORDED_COLUMNS = (
    "transaction_id, user_id, amount, transaction_type, transaction_date, full_name_sealed,"
    " status, version, created_at, updated_at, position"
)


class WalletReads:
    def __init__(self, pool: asyncpg.Pool, events_topic: str) -> None:
        self._pool = pool
        self._events_topic = events_topic

    async def balance(self, user_id: UUID, partition: int) -> asyncpg.Record:
        """The wallet's row (or NULLs) with its partition's checkpoint, in one snapshot."""
        row = await self._pool.fetchrow(
            "SELECT b.balance, b.updated_at, b.position, c.next_offset AS checkpoint"
            " FROM (SELECT 1) AS one"
            " LEFT JOIN wallet.balances b ON b.user_id = $1"
            " LEFT JOIN wallet.checkpoints c ON c.consumer = $2 AND c.topic = $3"
            " AND c.partition = $4",
            user_id, PROJECTOR_NAME, self._events_topic, partition,
        )  # fmt: skip
        assert row is not None, "one row always"
        return row

    async def movements(
        self, user_id: UUID, limit: int, before_sequence: int | None,
        since: datetime | None, until: datetime | None,
    ) -> list[asyncpg.Record]:  # fmt: skip
        """Newest first; `since` inclusive and `until` exclusive."""
        return list(
            await self._pool.fetch(
                f"SELECT {MOVEMENT_COLUMNS} FROM wallet.movements WHERE user_id = $1"
                " AND ($2::bigint IS NULL OR sequence < $2)"
                " AND ($3::timestamptz IS NULL OR created_at >= $3)"
                " AND ($4::timestamptz IS NULL OR created_at < $4)"
                " ORDER BY sequence DESC LIMIT $5",
                user_id, before_sequence, since, until, limit,
            )
        )  # fmt: skip

    async def movement_sequence(self, user_id: UUID, movement_id: UUID) -> int | None:
        value = await self._pool.fetchval(
            "SELECT sequence FROM wallet.movements WHERE movement_id = $1 AND user_id = $2",
            movement_id, user_id,
        )  # fmt: skip
        return None if value is None else int(value)

    async def transfer(self, transfer_id: UUID) -> asyncpg.Record | None:
        """The sender's view of a transfer with the recipient's decision, if any."""
        return await self._pool.fetchrow(
            "SELECT d.transfer_id, d.from_user_id, d.to_user_id, d.amount, d.status, d.code,"
            " d.note_sealed, d.created_at, d.updated_at, d.position,"
            " c.status AS credit_status, c.decided_at AS credited_at"
            " FROM wallet.transfer_debits d"
            " LEFT JOIN wallet.transfer_credits c USING (transfer_id)"
            " WHERE d.transfer_id = $1",
            transfer_id,
        )

    async def system_totals(self) -> asyncpg.Record:
        row = await self._pool.fetchrow(SYSTEM_TOTALS_SQL)
        assert row is not None, "an aggregate query returns one row"
        return row

    async def recorded(self, transaction_id: UUID) -> asyncpg.Record | None:
        return await self._pool.fetchrow(
            f"SELECT {RECORDED_COLUMNS} FROM wallet.recorded_transactions"
            " WHERE transaction_id = $1",
            transaction_id,
        )

    async def recorded_list(
        self, user_id: UUID, limit: int, before: tuple[datetime, UUID] | None, *,
        include_voided: bool,
    ) -> list[asyncpg.Record]:  # fmt: skip
        """A user's recorded transactions, newest transaction date first."""
        date, transaction_id = before if before is not None else (None, None)
        return list(
            await self._pool.fetch(
                f"SELECT {RECORDED_COLUMNS} FROM wallet.recorded_transactions"
                " WHERE user_id = $1 AND ($2::timestamptz IS NULL"
                " OR (transaction_date, transaction_id) < ($2, $3::uuid))"
                " AND ($5 OR status = 'active')"
                " ORDER BY transaction_date DESC, transaction_id DESC LIMIT $4",
                user_id, date, transaction_id, limit, include_voided,
            )
        )  # fmt: skip
