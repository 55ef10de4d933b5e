"""The asyncpg pool every process opens at start (never at import)."""

import asyncpg
import orjson

POOL_MIN_CONNECTIONS = 1
POOL_MAX_CONNECTIONS = 10
CONNECT_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 30.0
"""No single statement may hang a consumer forever; long audits use their own connection."""
PLAN_CACHE_MODE = "force_custom_plan"
"""asyncpg prepares every statement, and PostgreSQL moves a prepared statement to a generic plan
after five runs. The engine's batch statements join `unnest` of arrays from 1 to 1,000 long
with tables that grow from empty: a generic plan chosen while the tables were small stayed in
use until autovacuum analysed them, and `make bench` ingest fell from 3,400 to 640 commands/s
once the latency phase (one command at a time) had run first. Planning each statement with its
real parameters costs a fraction of a millisecond (see ADR 0020)."""
RANDOM_PAGE_COST = "1.1"
"""Every statement of the platform finds rows by key or key range. A worker's batch joins up to
1,000 keys with a table that only grows (the inbox keeps every command id); at the default cost
of a random page (4, for spinning disks) PostgreSQL hashed the whole table on every batch until
it held hundreds of thousands of rows, so a batch grew slower with the table. 1.1, the usual
figure for SSDs and cached data, makes it probe the index (ADR 0020)."""


async def _init_connection(connection: asyncpg.Connection) -> None:
    """Decode json/jsonb with orjson so rows come back as Python values, fast."""
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(
    dsn: str,
    *,
    min_size: int = POOL_MIN_CONNECTIONS,
    max_size: int = POOL_MAX_CONNECTIONS,
    application_name: str = "ledgerbus",
) -> asyncpg.Pool:
    settings = {
        "application_name": application_name,
        "plan_cache_mode": PLAN_CACHE_MODE,
        "random_page_cost": RANDOM_PAGE_COST,
    }
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_SECONDS,
        command_timeout=COMMAND_TIMEOUT_SECONDS,
        init=_init_connection,
        server_settings=settings,
    )
    assert pool is not None
    return pool


async def connect(dsn: str, *, application_name: str = "ledgerbus") -> asyncpg.Connection:
    """One dedicated connection, for LISTEN or a long snapshot."""
    connection = await asyncpg.connect(
        dsn,
        timeout=CONNECT_TIMEOUT_SECONDS,
        server_settings={"application_name": application_name},
    )
    await _init_connection(connection)
    return connection
