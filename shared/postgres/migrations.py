"""A migration runner per service schema.

Each service keeps numbered SQL files in its `migrations/` folder (`0001_name.sql`, ...). The
runner applies the missing ones in order, each in its own transaction, and records them in
`<schema>.schema_migrations`, under an advisory lock so two processes starting together never
apply one file twice.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATION_FILE_PATTERN = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
MIGRATION_LOCK_KEY = 0x1ED6E2B05
"""Advisory lock id shared by every migration run: migrations of all services serialise."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def discover(folder: Path) -> list[Migration]:
    """Read the migration files of one service, refusing gaps and stray names."""
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = MIGRATION_FILE_PATTERN.match(path.name)
        if match is None:
            raise MigrationError(f"{path} is not named like 0001_description.sql")
        migrations.append(Migration(int(match.group(1)), path.name, path.read_text()))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{folder}: expected migration {expected:04d}, found {migration.name}"
            )
    return migrations


async def migrate(
    connection: asyncpg.Connection,
    schema: str,
    folder: Path,
    *,
    record_table: str = "schema_migrations",
    templated: bool = False,
) -> list[str]:
    """Apply the missing migrations of one schema; returns the names applied.

    `templated` files say `{schema}` where the schema's quoted name belongs: the platform's own
    migrations are applied that way to every service schema, recorded in `record_table`.
    """
    migrations = discover(folder)
    if templated:
        migrations = [
            Migration(m.version, m.name, m.sql.replace("{schema}", quote_schema(schema)))
            for m in migrations
        ]
    applied_now: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await connection.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".{record_table} ('
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await connection.fetch(
            f'SELECT version, name, checksum FROM "{schema}".{record_table}'
        )
        known = {row["version"]: row for row in rows}
        for migration in migrations:
            existing = known.get(migration.version)
            if existing is not None:
                if existing["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{schema}: migration {migration.name} was changed after it was applied; "
                        "add a new migration instead of editing an applied one."
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    f'INSERT INTO "{schema}".{record_table} (version, name, checksum)'
                    " VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.name)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now


PLATFORM_MIGRATIONS_FOLDER = Path(__file__).with_name("platform_migrations")
PLATFORM_RECORD_TABLE = "platform_migrations"
SCHEMA_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def quote_schema(schema: str) -> str:
    """A schema name safe to format into SQL; only plain lowercase identifiers are allowed."""
    if SCHEMA_NAME_PATTERN.match(schema) is None:
        raise MigrationError(f"{schema!r} is not a plain lowercase schema name")
    return f'"{schema}"'


async def ensure_platform_tables(connection: asyncpg.Connection, schema: str) -> list[str]:
    """Apply the engine's own migrations (checkpoints, outbox, inbox, ...) to a service schema."""
    return await migrate(
        connection,
        schema,
        PLATFORM_MIGRATIONS_FOLDER,
        record_table=PLATFORM_RECORD_TABLE,
        templated=True,
    )
