"""Operator tasks shared by the CLI, `make dev` and the tests: migrate and create topics."""

from pathlib import Path

from ledgerbus.registry import services
from shared.kafka.topics import TOPIC_DEFINITIONS_PATH, create_topics, load_definitions
from shared.postgres.migrations import ensure_platform_tables, migrate
from shared.postgres.pool import connect


async def migrate_all(dsn: str) -> list[str]:
    """Apply every service's migrations; returns `schema/file` for each file applied now."""
    applied: list[str] = []
    connection = await connect(dsn, application_name="ledgerbus-migrate")
    try:
        for service in services():
            if service.schema is None or service.migrations is None:
                continue  # it keeps nothing in PostgreSQL
            platform = await ensure_platform_tables(connection, service.schema)
            applied.extend(f"{service.schema}/platform/{name}" for name in platform)
            names = await migrate(connection, service.schema, service.migrations)
            applied.extend(f"{service.schema}/{name}" for name in names)
    finally:
        await connection.close()
    return applied


async def create_all_topics(
    bootstrap_servers: str, prefix: str = "", definitions: Path = TOPIC_DEFINITIONS_PATH
) -> list[str]:
    return await create_topics(bootstrap_servers, load_definitions(definitions), prefix)
