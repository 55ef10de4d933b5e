"""`ledgerbus projections rebuild <service>`: rebuild read models from the log and swap them in.

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
from typing import Any

import asyncpg

from shared.engine.projection import ProjectionSet
from shared.engine.replay import Replayer, replay_into
from shared.engine.tables import Table, TableStore
from shared.postgres.pool import connect
from shared.waiters import RESET_PAYLOAD

SWAP_LOCK_TIMEOUT_SECONDS = 10
"""How long the swap waits for the live projector's current batch before giving up."""


@dataclass(frozen=True, slots=True)
class RebuildResult:
    events_applied: int
    rows: dict[str, int]
    positions: dict[int, int]
    seconds: float


async def rebuild(
    dsn: str,
    bootstrap_servers: str,
    projections: ProjectionSet,
    *,
    topic_prefix: str = "",
    on_total: Callable[[int], None] = lambda _: None,
    on_progress: Callable[[int], None] = lambda _: None,
) -> RebuildResult:
    started = time.perf_counter()
    topic = f"{topic_prefix}{projections.topic}"
    live = TableStore(projections.schema)
    scratch = TableStore(f"{projections.schema}_rebuild_{secrets.token_hex(6)}")
    replayer = Replayer(bootstrap_servers, topic, projections)
    connection = await connect(dsn, application_name="ledgerbus-rebuild")
    swapped = False
    try:
        ends = await replayer.start()
        on_total(sum(ends.values()))
        await scratch.create_like(connection, live, projections.tables)
        await replay_into(connection, scratch, replayer, ends, on_progress)
        positions = await _swap(connection, live, scratch, replayer, topic)
        swapped = True
        counts = {}
        for table in projections.tables:
            query = f"SELECT count(*) FROM {live.qualified(table)}"
            counts[table.name] = int(await connection.fetchval(query))
    finally:
        await replayer.stop()
        if not swapped:
            await scratch.drop(connection)
        await connection.close()
    return RebuildResult(
        replayer.state.events_applied, counts, positions, time.perf_counter() - started
    )


async def _swap(
    connection: asyncpg.Connection,
    live: TableStore,
    scratch: TableStore,
    replayer: Replayer,
    topic: str,
) -> dict[int, int]:
    projections = replayer.projections
    checkpoints = f"{live.quoted}.checkpoints"
    async with connection.transaction():
        await connection.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT_SECONDS}s'")
        rows = await connection.fetch(
            f"SELECT partition, next_offset FROM {checkpoints}"
            " WHERE consumer = $1 AND topic = $2 FOR UPDATE",
            projections.consumer,
            topic,
        )
        live_positions = {row["partition"]: row["next_offset"] for row in rows}
        # Catch up to the live projector wherever it got further than the replay.
        targets = {
            partition: max(offset, live_positions.get(partition, 0))
            for partition, offset in replayer.state.positions.items()
        }
        await _catch_up(connection, scratch, replayer, targets)
        for table in projections.tables:
            await _move_into_place(connection, live, scratch, table)
        await connection.execute(f"DROP SCHEMA {scratch.quoted}")
        await connection.execute(
            f"INSERT INTO {checkpoints} AS c (consumer, topic, partition, next_offset)"
            " SELECT $1, $2, p, o FROM unnest($3::integer[], $4::bigint[]) AS t(p, o)"
            " ON CONFLICT (consumer, topic, partition) DO UPDATE SET"
            " next_offset = EXCLUDED.next_offset, generation = c.generation + 1,"
            " updated_at = now()",
            projections.consumer,
            topic,
            list(targets),
            list(targets.values()),
        )
        # Gateways drop every cached read of the old tables when this commits.
        await connection.execute(
            "SELECT pg_notify($1, $2)", projections.positions_channel, RESET_PAYLOAD
        )
    return targets


async def _catch_up(
    connection: asyncpg.Connection,
    scratch: TableStore,
    replayer: Replayer,
    targets: dict[int, int],
) -> None:
    """Fold the records the live projector applied while the replay ran, into the scratch."""
    before = [dict(rows) for rows in replayer.state.states]
    appended: dict[Table, list[Any]] = {}

    def collect(table: Table, rows: list[Any]) -> None:
        appended.setdefault(table, []).extend(rows)

    await replayer.advance(targets, collect)
    for table, rows in appended.items():
        await scratch.insert(connection, table, rows)
    folds = replayer.projections.folds
    for fold, states, old in zip(folds, replayer.state.states, before, strict=True):
        changed = [row for key, row in states.items() if old.get(key) != row]
        await scratch.upsert(connection, fold.state, changed)


async def _move_into_place(
    connection: asyncpg.Connection, live: TableStore, scratch: TableStore, table: Table
) -> None:
    old_indexes = await _index_definitions(connection, live.schema, table.name)
    await connection.execute(f"DROP TABLE {live.qualified(table)}")
    await connection.execute(f"ALTER TABLE {scratch.qualified(table)} SET SCHEMA {live.quoted}")
    await _restore_index_names(connection, live, table.name, old_indexes)


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
    connection: asyncpg.Connection, live: TableStore, table: str, old_indexes: dict[str, str]
) -> None:
    """`CREATE TABLE ... LIKE` names indexes itself; give them the names migrations used."""
    by_definition = {definition: name for name, definition in old_indexes.items()}
    for new_name, definition in (await _index_definitions(connection, live.schema, table)).items():
        old_name = by_definition.get(definition)
        if old_name is not None and old_name != new_name:
            await connection.execute(
                f'ALTER INDEX {live.quoted}."{new_name}" RENAME TO "{old_name}"'
            )
