"""`ledgerbus audit`: replay a service's events into a scratch schema and compare.

1. Read the true end of the events log and give the live projector a moment to reach it.
2. One REPEATABLE READ snapshot of the live schema fixes the positions the read model reached,
   and the state of every consumer of the service: a partition nobody claimed although it
   holds records, a halted one, one whose lag does not shrink, an outbox row older than
   `OUTBOX_ROW_AGE_BOUND_SECONDS`: each is a named difference, so the audit cannot say MATCH
   while something is wrong.
3. The events topic is replayed from offset 0 exactly up to those positions into the scratch
   schema, with the same folds as the live projector, then read on to the end of the log (so
   every partition is read, and every event id is known to the service's own checks).
4. Every table is compared row by row; the service's checks run on the same snapshot.
"""

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from shared.engine.audit_report import AuditReport, TableComparison, compare_sorted
from shared.engine.projection import (
    APPLIED_EVENTS,
    Applied,
    ProjectionInvariantError,
    ProjectionSet,
)
from shared.engine.replay import Replayer, ReplayState, replay_into
from shared.engine.tables import Table, TableStore
from shared.kafka.lag import LagReader
from shared.observability.consumers import (
    ConsumerWatch,
    ProgressMemory,
    consumer_report,
    partition_rows,
    partition_state,
    report_names,
)
from shared.postgres.pool import connect
from shared.settings import PlatformSettings

AUDIT_CATCH_UP_TIMEOUT_SECONDS = 15.0
"""How long the audit waits for the live projector to reach the end of the log."""
AUDIT_CATCH_UP_POLL_SECONDS = 0.2
OUTBOX_ROW_AGE_BOUND_SECONDS = 30
EndsByWatch = Mapping[ConsumerWatch, Mapping[int, int]]
"""A message decided this long ago and still not published means publishing is stuck."""


class AuditChecks(Protocol):
    """A service's own checks: `observe` sees every event the replay admits, in log order;
    `check` runs on the live snapshot after the replay."""

    def observe(self, event: Any, applied: Applied) -> None: ...

    async def check(
        self,
        report: AuditReport,
        live: asyncpg.Connection,
        replay: ReplayState,
        until: datetime | None,
    ) -> None: ...


async def audit_projections(
    settings: PlatformSettings,
    service: str,
    projections: ProjectionSet,
    watches: Sequence[ConsumerWatch],
    *,
    checks: AuditChecks | None = None,
    until: datetime | None = None,
    on_total: Callable[[int], None] = lambda _: None,
    on_progress: Callable[[int], None] = lambda _: None,
) -> AuditReport:
    report = AuditReport(service=service)
    topic = settings.topic(projections.topic)
    live = await connect(settings.postgres_dsn, application_name="ledgerbus-audit")
    scratch_connection = await connect(settings.postgres_dsn, application_name="ledgerbus-audit")
    scratch = TableStore(f"audit_{secrets.token_hex(6)}")
    replayer = Replayer(
        settings.kafka_bootstrap_servers, topic, projections, until,
        observe=checks.observe if checks is not None else None,
    )  # fmt: skip
    lag = LagReader(settings.kafka_bootstrap_servers, client_id="ledgerbus-audit-lag")
    try:
        await lag.start()
        await replayer.start()
        ends = {watch: await lag.end_offsets(watch.topic) for watch in watches}
        await _wait_for_catch_up(live, watches, ends)
        snapshot = live.transaction(isolation="repeatable_read", readonly=True)
        await snapshot.start()
        report.positions = await _positions(live, projections, topic)
        await _check_consumers(report, live, lag, watches, ends)
        await _check_outbox(report, live, projections.schema)
        on_total(sum(report.positions.values()))
        await scratch.create_like(
            scratch_connection, TableStore(projections.schema), projections.tables
        )
        try:
            await replay_into(scratch_connection, scratch, replayer, report.positions, on_progress)
            await replayer.advance(await replayer.ends(), lambda *_: None, fold=False)
        except ProjectionInvariantError as error:
            report.violations.append(f"the log contradicts itself: {error}")
            return report
        _note_replay(report, replayer.state)
        await _compare(report, live, scratch_connection, scratch, projections, until)
        if checks is not None:
            await checks.check(report, live, replayer.state, until)
        await snapshot.rollback()
    finally:
        await replayer.stop()
        await lag.stop()
        await scratch.drop(scratch_connection)
        await scratch_connection.close()
        await live.close()
    return report


async def _positions(
    live: asyncpg.Connection, projections: ProjectionSet, topic: str
) -> dict[int, int]:
    rows = await live.fetch(
        f"SELECT partition, next_offset FROM {TableStore(projections.schema).quoted}.checkpoints"
        " WHERE consumer = $1 AND topic = $2",
        projections.consumer,
        topic,
    )
    return {row["partition"]: row["next_offset"] for row in rows}


async def _wait_for_catch_up(
    live: asyncpg.Connection, watches: Sequence[ConsumerWatch], ends: EndsByWatch
) -> None:
    """Give the live consumers a moment to apply what the log held when the audit began; what
    one still lacks after that is a difference. Waiting stops early when every partition still
    behind has no live owner or is halted: nobody is applying it."""
    deadline = time.monotonic() + AUDIT_CATCH_UP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        applying = False
        for watch in watches:
            rows = await partition_rows(live, watch)
            for partition, end in ends[watch].items():
                state = partition_state(rows.get(partition), end)
                applying |= state["lag"] > 0 and state["owned"] and state["halted"] is None
        if not applying:
            return
        await asyncio.sleep(AUDIT_CATCH_UP_POLL_SECONDS)


async def _check_consumers(
    report: AuditReport,
    live: asyncpg.Connection,
    lag: LagReader,
    watches: Sequence[ConsumerWatch],
    ends: EndsByWatch,
) -> None:
    """Lag is measured against the log as it was when the audit began, after waiting for it:
    records appended since are not lag; records older than the wait that are still not applied
    are a difference, named with why (halted, never claimed, no live owner, too slow)."""
    for name, watch in zip(report_names(watches), watches, strict=True):
        state, _ = await consumer_report(live, lag, watch, ProgressMemory(), ends[watch])
        report.consumers[name] = state
        for partition, item in state["partitions"].items():
            where = f"{watch.consumer} {watch.topic}[{partition}]"
            if item["halted"] is not None:
                report.add_difference(f"{where} is halted: {item['halted']}")
            elif item["lag"] == 0:
                continue
            elif not item["claimed"]:
                report.add_difference(f"{where} was never claimed; it holds {item['lag']} records")
            elif not item["owned"]:
                report.add_difference(
                    f"{where} has no live owner: {item['lag']} records not applied"
                )
            else:
                report.add_difference(
                    f"{where} did not catch up within {AUDIT_CATCH_UP_TIMEOUT_SECONDS:g} s:"
                    f" {item['lag']} records not applied"
                )


async def _check_outbox(report: AuditReport, live: asyncpg.Connection, schema: str) -> None:
    rows = await live.fetch(
        f"SELECT consumer, source_topic, source_partition, count(*) AS n,"
        f" extract(epoch FROM now() - min(created_at)) AS age"
        f" FROM {TableStore(schema).quoted}.outbox WHERE created_at < now() - make_interval("
        " secs => $1) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        OUTBOX_ROW_AGE_BOUND_SECONDS,
    )
    for row in rows:
        report.add_difference(
            f"{row['consumer']} {row['source_topic']}[{row['source_partition']}]: {row['n']}"
            f" decided messages unpublished for up to {float(row['age']):.0f} s"
        )


def _note_replay(report: AuditReport, state: ReplayState) -> None:
    report.events_applied = state.events_applied
    if state.duplicates:
        report.notes.append(f"{state.duplicates} repeated events in the log were ignored (same id)")
    if state.invalid_records:
        report.notes.append(f"{state.invalid_records} invalid records skipped (see the DLQ)")
    if state.after_cut:
        report.notes.append(f"{state.after_cut} events after the --until cut were left out")


def order_by(table: Table) -> str:
    """Key order as Python compares it: text by code point (collation C), the rest natively."""
    types = dict(zip(table.columns, table.types, strict=True))
    return ", ".join(
        f'{column} COLLATE "C"' if types[column] == "text" else column for column in table.key
    )


def _describe_key(row: tuple[Any, ...]) -> str:
    return ":".join(str(part) for part in row)


async def _compare(  # noqa: PLR0917 (what a comparison reads, each named)
    report: AuditReport,
    live: asyncpg.Connection,
    scratch_connection: asyncpg.Connection,
    scratch: TableStore,
    projections: ProjectionSet,
    until: datetime | None,
) -> None:
    """Every table at once: state tables and the applied events only without a cut (a cut's
    state is a service's own check); appended tables cut by their time column."""
    live_store = TableStore(projections.schema)
    async with scratch_connection.transaction():
        for table in projections.tables:
            is_state = any(table is fold.state for fold in projections.folds)
            if until is not None and (is_state or table is APPLIED_EVENTS):
                continue
            if until is not None and table.until_column is None:
                continue
            cut = "" if until is None else f" WHERE {table.until_column} <= $1"
            columns = ", ".join(table.key + tuple(c for c in table.columns if c not in table.key))
            order = order_by(table)
            comparison = TableComparison(
                table.name,
                f"SELECT {columns} FROM {live_store.qualified(table)}{cut} ORDER BY {order}",
                f"SELECT {columns} FROM {scratch.qualified(table)} ORDER BY {order}",
                len(table.key),
                _describe_key,
            )
            arguments = () if until is None else (until,)
            await compare_sorted(report, comparison, live, scratch_connection, arguments)
