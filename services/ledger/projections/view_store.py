"""SQL for the ledger read model, for the live schema or a scratch copy of it."""

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from services.ledger.projections.ledger_view import (
    BALANCE_COLUMNS,
    ENTRY_COLUMNS,
    BalanceRow,
    EntryRow,
)
from shared.postgres.migrations import quote_schema

LIVE_SCHEMA = "ledger"
VIEW_TABLES = ("balances", "entries")
POSITIONS_CHANNEL = "ledger_positions"
"""NOTIFY channel on which the projector announces each partition's new checkpoint."""


class ViewStore:
    def __init__(self, schema: str = LIVE_SCHEMA) -> None:
        self.schema = schema
        quoted = quote_schema(schema)
        self.balances = f"{quoted}.balances"
        self.entries = f"{quoted}.entries"

    async def create_like_live(self, connection: asyncpg.Connection) -> None:
        """Create empty tables shaped exactly like the live read model, in this schema."""
        await connection.execute(f"CREATE SCHEMA {quote_schema(self.schema)}")
        for table in VIEW_TABLES:
            await connection.execute(
                f"CREATE TABLE {quote_schema(self.schema)}.{table}"
                f" (LIKE {quote_schema(LIVE_SCHEMA)}.{table} INCLUDING ALL)"
            )

    async def load_balances(
        self, connection: asyncpg.Connection, owners: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], BalanceRow]:
        rows = await connection.fetch(
            f"SELECT b.app, b.owner_id, b.balance, b.last_updated, b.sequence, b.position"
            f" FROM {self.balances} b"
            " JOIN unnest($1::text[], $2::text[]) AS k(app, owner_id) USING (app, owner_id)",
            [owner[0] for owner in owners],
            [owner[1] for owner in owners],
        )
        return {(row["app"], row["owner_id"]): BalanceRow(*row.values()) for row in rows}

    async def write(
        self,
        connection: asyncpg.Connection,
        balances: Sequence[BalanceRow],
        entries: Sequence[EntryRow],
    ) -> None:
        """Upsert a batch's balances and insert its entries, one statement each."""
        if entries:
            await connection.execute(
                f"INSERT INTO {self.entries} ({', '.join(ENTRY_COLUMNS)})"
                " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],"
                " $5::bigint[], $6::text[], $7::timestamptz[], $8::bigint[], $9::bigint[],"
                " $10::text[], $11::text[]) ON CONFLICT (id) DO NOTHING",
                *_columns(entries, ENTRY_COLUMNS),
            )
        if balances:
            await connection.execute(
                f"INSERT INTO {self.balances} ({', '.join(BALANCE_COLUMNS)})"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[],"
                " $5::bigint[], $6::text[]) ON CONFLICT (app, owner_id) DO UPDATE SET"
                " balance = EXCLUDED.balance, last_updated = EXCLUDED.last_updated,"
                " sequence = EXCLUDED.sequence, position = EXCLUDED.position",
                *_columns(balances, BALANCE_COLUMNS),
            )

    async def copy_entries(
        self, connection: asyncpg.Connection, entries: Iterable[EntryRow]
    ) -> None:
        await connection.copy_records_to_table(
            "entries", schema_name=self.schema, columns=list(ENTRY_COLUMNS), records=entries
        )

    async def copy_balances(
        self, connection: asyncpg.Connection, balances: Iterable[BalanceRow]
    ) -> None:
        await connection.copy_records_to_table(
            "balances", schema_name=self.schema, columns=list(BALANCE_COLUMNS), records=balances
        )


def _columns(rows: Sequence[tuple[Any, ...]], names: Sequence[str]) -> list[list[Any]]:
    """Column arrays for `unnest`: named-tuple rows transposed."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in names]
