"""`ledgerbus projections rebuild ledger`: rebuild the read model from the log and swap it in.

The new tables are filled in a scratch schema while the live projector keeps serving. The swap
then runs in one transaction: it locks the live projector's checkpoint rows (its next batch
waits at its fence), catches the scratch tables up to wherever the live projector stood, moves
them into place and bumps the checkpoints' generation, which tells the live projector to re-read
its position. Readers see the old tables until the commit and the new ones after it.
"""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from services.ledger.projections.ledger_view import EntryRow
from services.ledger.projections.replay import Replayer, replay_into_scratch
from services.ledger.projections.view_store import (
    LIVE_SCHEMA,
    POSITIONS_CHANNEL,
    VIEW_TABLES,
    ViewStore,
)
from services.ledger.settings import EVENTS_TOPIC, PROJECTOR_NAME, SCHEMA
from shared.postgres.migrations import quote_schema
from shared.postgres.pool import connect
from shared.waiters import RESET_PAYLOAD

SWAP_LOCK_TIMEOUT = "10s"
"""How long the swap waits for the live projector's current batch before giving up."""


@dataclass(frozen=True, slots=True)
class RebuildResult:
    events_applied: int
    entries: int
    balances: int
    positions: dict[int, int]
    seconds: float


async def rebuild_ledger(
    dsn: str,
    bootstrap_servers: str,
    *,
    topic_prefix: str = "",
    on_total: Callable[[int], None] = lambda _: None,
    on_progress: Callable[[int], None] = lambda _: None,
) -> RebuildResult:
    started = time.perf_counter()
    topic = f"{topic_prefix}{EVENTS_TOPIC}"
    store = ViewStore(f"ledger_rebuild_{secrets.token_hex(6)}")
    replayer = Replayer(bootstrap_servers, topic)
    connection = await connect(dsn, application_name="ledgerbus-rebuild")
    swapped = False
    try:
        ends = await replayer.start()
        on_total(sum(ends.values()))
        await replay_into_scratch(connection, store, replayer, ends, on_progress)
        positions = await _swap(connection, store, replayer, topic)
        swapped = True
    finally:
        await replayer.stop()
        if not swapped:
            await connection.execute(f"DROP SCHEMA IF EXISTS {quote_schema(store.schema)} CASCADE")
        await connection.close()
    return RebuildResult(
        events_applied=replayer.state.events_applied,
        entries=await _count(dsn, "entries"),
        balances=len(replayer.state.rows),
        positions=positions,
        seconds=time.perf_counter() - started,
    )


async def _swap(
    connection: asyncpg.Connection, store: ViewStore, replayer: Replayer, topic: str
) -> dict[int, int]:
    async with connection.transaction():
        await connection.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
        rows = await connection.fetch(
            "SELECT partition, next_offset FROM ledger.checkpoints"
            " WHERE consumer = $1 AND topic = $2 FOR UPDATE",
            PROJECTOR_NAME,
            topic,
        )
        live_positions = {row["partition"]: row["next_offset"] for row in rows}
        # Catch up to the live projector wherever it got further than the replay.
        targets = {
            partition: max(offset, live_positions.get(partition, 0))
            for partition, offset in replayer.state.positions.items()
        }
        caught_up: list[EntryRow] = []
        before = dict(replayer.state.rows)

        def collect(entries: list[EntryRow]) -> None:
            caught_up.extend(entries)

        await replayer.advance(targets, collect)
        changed = [row for key, row in replayer.state.rows.items() if before.get(key) != row]
        await store.write(connection, changed, caught_up)
        for table in VIEW_TABLES:
            old_indexes = await _index_definitions(connection, LIVE_SCHEMA, table)
            await connection.execute(f"DROP TABLE {quote_schema(LIVE_SCHEMA)}.{table}")
            await connection.execute(
                f"ALTER TABLE {quote_schema(store.schema)}.{table}"
                f" SET SCHEMA {quote_schema(LIVE_SCHEMA)}"
            )
            await _restore_index_names(connection, table, old_indexes)
        await connection.execute(f"DROP SCHEMA {quote_schema(store.schema)}")
        await connection.execute(
            "INSERT INTO ledger.checkpoints AS c (consumer, topic, partition, next_offset)"
            " SELECT $1, $2, p, o FROM unnest($3::integer[], $4::bigint[]) AS t(p, o)"
            " ON CONFLICT (consumer, topic, partition) DO UPDATE SET"
            " next_offset = EXCLUDED.next_offset, generation = c.generation + 1,"
            " updated_at = now()",
            PROJECTOR_NAME,
            topic,
            list(targets),
            list(targets.values()),
        )
        # Gateways drop every cached read of the old tables when this commits.
        await connection.execute("SELECT pg_notify($1, $2)", POSITIONS_CHANNEL, RESET_PAYLOAD)
    return targets


async def _count(dsn: str, table: str) -> int:
    connection = await connect(dsn, application_name="ledgerbus-rebuild")
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {SCHEMA}.{table}"))
    finally:
        await connection.close()


async def _index_definitions(
    connection: asyncpg.Connection, schema: str, table: str
) -> dict[str, str]:
    """Index name to its definition with the name and schema taken out, for matching."""
    rows = await connection.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
        schema,
        table,
    )
    return {
        row["indexname"]: row["indexdef"]
        .replace(f" {row['indexname']} ", " ? ", 1)
        .replace(f" ON {schema}.", " ON ?.", 1)
        for row in rows
    }


async def _restore_index_names(
    connection: asyncpg.Connection, table: str, old_indexes: dict[str, str]
) -> None:
    """`CREATE TABLE ... LIKE` names indexes itself; give them the names migrations used."""
    by_definition = {definition: name for name, definition in old_indexes.items()}
    for new_name, definition in (await _index_definitions(connection, LIVE_SCHEMA, table)).items():
        old_name = by_definition.get(definition)
        if old_name is not None and old_name != new_name:
            await connection.execute(
                f'ALTER INDEX {quote_schema(LIVE_SCHEMA)}."{new_name}" RENAME TO "{old_name}"'
            )
