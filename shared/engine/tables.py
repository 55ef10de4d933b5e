"""Read-model tables described once, and the SQL the platform runs on them.

A `Table` names its columns (a `NamedTuple` row type), their PostgreSQL types and its key. The
live projector loads, upserts and inserts rows with one `unnest` statement per table per
batch; the replay COPYs them; the rebuild and the audit create scratch copies and compare them.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.postgres.migrations import quote_schema


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    row: type[Any]
    """A `NamedTuple` whose fields are the columns, in order."""
    types: tuple[str, ...]
    """The PostgreSQL type of each column, in the same order."""
    key: tuple[str, ...]
    """The primary key: rows are upserted (state) or deduplicated (appended) by it."""
    until_column: str | None = None
    """For an appended table: the time column an audit `--until` cut compares."""

    def __post_init__(self) -> None:
        fields = self.row._fields
        assert len(fields) == len(self.types), f"{self.name}: one type per column"
        assert set(self.key) <= set(fields), f"{self.name}: the key names its columns"
        assert self.until_column is None or self.until_column in fields, self.name

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.row._fields)

    def key_of(self, row: Any) -> tuple[Any, ...]:
        return tuple(getattr(row, name) for name in self.key)


def _arrays(table: Table, names: Sequence[str]) -> str:
    types = dict(zip(table.columns, table.types, strict=True))
    return ", ".join(f"${index}::{types[name]}[]" for index, name in enumerate(names, start=1))


def _transpose(rows: Sequence[Any], width: int) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


class TableStore:
    """SQL for the tables of one schema (the live one, or a scratch copy)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.quoted = quote_schema(schema)

    def qualified(self, table: Table) -> str:
        return f"{self.quoted}.{table.name}"

    async def load(
        self, connection: asyncpg.Connection, table: Table, keys: Sequence[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], Any]:
        """The rows with these keys, as the table's row type, by key."""
        if not keys:
            return {}
        names = ", ".join(f"t.{column}" for column in table.columns)
        key_names = ", ".join(table.key)
        keys_array = _arrays(table, table.key)
        rows = await connection.fetch(
            f"SELECT {names} FROM {self.qualified(table)} t JOIN unnest({keys_array})"
            f" AS k({key_names}) USING ({key_names})",
            *_transpose([list(key) for key in keys], len(table.key)),
        )
        loaded = (table.row(*row.values()) for row in rows)
        return {table.key_of(row): row for row in loaded}

    async def upsert(
        self, connection: asyncpg.Connection, table: Table, rows: Sequence[Any]
    ) -> None:
        if not rows:
            return
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in table.columns if c not in table.key)
        await connection.execute(
            f"INSERT INTO {self.qualified(table)} ({', '.join(table.columns)})"
            f" SELECT * FROM unnest({_arrays(table, table.columns)})"
            f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}",
            *_transpose(rows, len(table.columns)),
        )

    async def insert(
        self, connection: asyncpg.Connection, table: Table, rows: Sequence[Any]
    ) -> None:
        if not rows:
            return
        await connection.execute(
            f"INSERT INTO {self.qualified(table)} ({', '.join(table.columns)})"
            f" SELECT * FROM unnest({_arrays(table, table.columns)})"
            f" ON CONFLICT ({', '.join(table.key)}) DO NOTHING",
            *_transpose(rows, len(table.columns)),
        )

    async def copy(self, connection: asyncpg.Connection, table: Table, rows: Iterable[Any]) -> None:
        await connection.copy_records_to_table(
            table.name, schema_name=self.schema, columns=list(table.columns), records=rows
        )

    async def create_like(
        self, connection: asyncpg.Connection, live: "TableStore", tables: Sequence[Table]
    ) -> None:
        """Create empty tables shaped exactly like the live ones, in this schema."""
        await connection.execute(f"CREATE SCHEMA {self.quoted}")
        for table in tables:
            await connection.execute(
                f"CREATE TABLE {self.qualified(table)} (LIKE {live.qualified(table)} INCLUDING ALL)"
            )

    async def drop(self, connection: asyncpg.Connection) -> None:
        await connection.execute(f"DROP SCHEMA IF EXISTS {self.quoted} CASCADE")
