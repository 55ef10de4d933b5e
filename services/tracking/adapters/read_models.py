"""Queries on the tracking read models, for the gateway's routes (never for decisions)."""

from datetime import datetime
from uuid import UUID

import asyncpg

ENTRY_COLUMNS = "id, user_id, type, date, year, meta_data, created_on, position"


class TrackingReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def entry(self, entry_id: UUID) -> asyncpg.Record | None:
        return await self._pool.fetchrow(
            f"SELECT {ENTRY_COLUMNS} FROM tracking.entries WHERE id = $1", entry_id
        )

    async def entries(
        self, user_id: UUID, *, entry_type: str | None, since: datetime | None,
        until: datetime | None, before: tuple[datetime, UUID] | None, limit: int,
    ) -> list[asyncpg.Record]:  # fmt: skip
        """Newest `date` first; `since` inclusive, `until` exclusive; `before` a cursor."""
        date, entry_id = before if before is not None else (None, None)
        return list(
            await self._pool.fetch(
                f"SELECT {ENTRY_COLUMNS} FROM tracking.entries WHERE user_id = $1"
                " AND ($2::text IS NULL OR type = $2)"
                " AND ($3::timestamptz IS NULL OR date >= $3)"
                " AND ($4::timestamptz IS NULL OR date < $4)"
                " AND ($5::timestamptz IS NULL OR (date, id) < ($5, $6::uuid))"
                " ORDER BY date DESC, id DESC LIMIT $7",
                user_id, entry_type, since, until, date, entry_id, limit,
            )
        )  # fmt: skip

    async def year(self, user_id: UUID, year: int) -> list[asyncpg.Record]:
        """The year document's entries, oldest first (the order the seed pushed them)."""
        return list(
            await self._pool.fetch(
                f"SELECT {ENTRY_COLUMNS} FROM tracking.entries WHERE user_id = $1 AND year = $2"
                " ORDER BY date, id",
                user_id, year,
            )
        )  # fmt: skip
