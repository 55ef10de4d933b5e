"""`ledgerbus audit --service ledger`: the read model and the decision state against the log.

1. One REPEATABLE READ snapshot of the live schema fixes the positions the read model reached.
2. `ledger.events` is replayed from offset 0 up to exactly those positions into a scratch schema.
3. Every balance and entry row is compared, and the invariants are checked: no negative
   balance, conservation (balances equal the sum of entries), one outcome per nonce, and the
   decision state agreeing with the log wherever both have seen the same events.
"""

import secrets
from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.ledger.projections.ledger_view import ProjectionInvariantError
from services.ledger.projections.replay import Replayer, replay_into_scratch
from services.ledger.projections.view_store import LIVE_SCHEMA, ViewStore
from services.ledger.settings import EVENTS_TOPIC, PROJECTOR_NAME, SCHEMA
from shared.audit import AuditReport, TableComparison, compare_sorted
from shared.kafka.checkpoints import CheckpointStore
from shared.postgres.migrations import quote_schema
from shared.postgres.pool import connect

BALANCE_ORDER = 'app COLLATE "C", owner_id COLLATE "C"'


async def audit_ledger(
    dsn: str,
    bootstrap_servers: str,
    *,
    topic_prefix: str = "",
    until: datetime | None = None,
    on_total: Callable[[int], None] = lambda _: None,
    on_progress: Callable[[int], None] = lambda _: None,
) -> AuditReport:
    report = AuditReport(service="ledger")
    topic = f"{topic_prefix}{EVENTS_TOPIC}"
    live = await connect(dsn, application_name="ledgerbus-audit")
    scratch = await connect(dsn, application_name="ledgerbus-audit-scratch")
    store = ViewStore(f"audit_{secrets.token_hex(6)}")
    replayer = Replayer(bootstrap_servers, topic, until)
    try:
        snapshot = live.transaction(isolation="repeatable_read", readonly=True)
        await snapshot.start()
        stored = await CheckpointStore(SCHEMA, PROJECTOR_NAME).positions(live)
        report.positions = {p: offset for (t, p), offset in stored.items() if t == topic}
        ends = await replayer.start()
        for partition, offset in report.positions.items():
            if offset > ends.get(partition, 0):
                raise ProjectionInvariantError(
                    f"the read model stands at {partition}:{offset} but the log ends at"
                    f" {ends.get(partition, 0)}: the log lost records"
                )
        on_total(sum(report.positions.values()))
        try:
            await replay_into_scratch(scratch, store, replayer, report.positions, on_progress)
        except ProjectionInvariantError as error:
            report.violations.append(f"the log contradicts itself: {error}")
            return report
        report.events_applied = replayer.state.events_applied
        _note_replay(report, replayer)
        await _compare(report, live, scratch, store, until)
        await _check_invariants(report, live, replayer)
        await snapshot.rollback()
    finally:
        await replayer.stop()
        await scratch.execute(f"DROP SCHEMA IF EXISTS {quote_schema(store.schema)} CASCADE")
        await scratch.close()
        await live.close()
    return report


def _note_replay(report: AuditReport, replayer: Replayer) -> None:
    state = replayer.state
    if state.duplicates:
        report.notes.append(f"{state.duplicates} repeated events in the log were ignored (same id)")
    if state.invalid_records:
        report.notes.append(f"{state.invalid_records} invalid records skipped (see the DLQ)")
    if state.after_cut:
        report.notes.append(f"{state.after_cut} events after the --until cut were left out")


async def _compare(
    report: AuditReport,
    live: asyncpg.Connection,
    scratch: asyncpg.Connection,
    store: ViewStore,
    until: datetime | None,
) -> None:
    live_entries = f"{quote_schema(LIVE_SCHEMA)}.entries"
    entry_columns = (
        "id, app, owner_id, operation, amount, nonce, created_on, balance, sequence, event_id,"
        " position"
    )
    cut = "" if until is None else " WHERE created_on <= $1"
    arguments = () if until is None else (until,)
    async with scratch.transaction():
        await compare_sorted(
            report,
            TableComparison(
                "entry",
                f"SELECT {entry_columns} FROM {live_entries}{cut} ORDER BY id",
                f"SELECT {entry_columns} FROM {store.entries} ORDER BY id",
                1,
                lambda row: str(row[0]),
            ),
            live,
            scratch,
            arguments,
        )
        await compare_sorted(report, _balances(store, until), live, scratch, arguments)


def _balances(store: ViewStore, until: datetime | None) -> TableComparison:
    describe: Callable[[tuple[object, ...]], str] = lambda row: f"{row[0]}:{row[1]}"  # noqa: E731
    if until is None:
        columns = "app, owner_id, balance, last_updated, sequence, position"
        return TableComparison(
            "balance",
            f"SELECT {columns} FROM {quote_schema(LIVE_SCHEMA)}.balances ORDER BY {BALANCE_ORDER}",
            f"SELECT {columns} FROM {store.balances} ORDER BY {BALANCE_ORDER}",
            2,
            describe,
        )
    # As of a cut, the live balance of an owner is the balance after its last entry before it.
    as_of = (
        "SELECT DISTINCT ON (app, owner_id) app, owner_id, balance FROM {table}"
        " WHERE created_on <= {cut} ORDER BY app, owner_id, sequence DESC"
    )
    return TableComparison(
        "balance",
        f"SELECT * FROM ({as_of.format(table=f'{quote_schema(LIVE_SCHEMA)}.entries', cut='$1')})"
        f" AS b ORDER BY {BALANCE_ORDER}",
        f"SELECT app, owner_id, balance FROM {store.balances} WHERE (app, owner_id) IN"
        f" (SELECT app, owner_id FROM {store.entries}) ORDER BY {BALANCE_ORDER}",
        2,
        describe,
    )


async def _check_invariants(
    report: AuditReport, live: asyncpg.Connection, replayer: Replayer
) -> None:
    negative = await live.fetch(
        "SELECT app, owner_id, balance FROM ledger.balances WHERE balance < 0 ORDER BY 1, 2"
    )
    for row in negative:
        report.violations.append(
            f"negative balance {row['app']}:{row['owner_id']} = {row['balance']}"
        )
    unbalanced = await live.fetch(
        "SELECT b.app, b.total, coalesce(e.total, 0) AS entries FROM"
        " (SELECT app, sum(balance) AS total FROM ledger.balances GROUP BY app) b"
        " LEFT JOIN (SELECT app, sum(amount) AS total FROM ledger.entries GROUP BY app) e"
        " USING (app) WHERE b.total <> coalesce(e.total, 0)"
    )
    for row in unbalanced:
        report.violations.append(
            f"conservation broken in {row['app']}: balances sum to {row['total']} but entries to"
            f" {row['entries']}"
        )
    for nonce in replayer.state.conflicting_nonces[:50]:
        report.violations.append(f"nonce {nonce} has more than one outcome in the log")
    await _check_decision_state(report, live, replayer)


async def _check_decision_state(
    report: AuditReport, live: asyncpg.Connection, replayer: Replayer
) -> None:
    """The processor's accounts agree with the log wherever both have seen the same events."""
    rows = await live.fetch("SELECT app, owner_id, balance, sequence FROM ledger.accounts")
    for row in rows:
        replayed = replayer.state.rows.get((row["app"], row["owner_id"]))
        replayed_sequence = replayed.sequence if replayed else 0
        owner = f"{row['app']}:{row['owner_id']}"
        if row["sequence"] < replayed_sequence:
            report.violations.append(
                f"decision state of {owner} is at sequence {row['sequence']} but the log has"
                f" {replayed_sequence}"
            )
        elif (
            replayed is not None
            and row["sequence"] == replayed_sequence
            and row["balance"] != replayed.balance
        ):
            report.violations.append(
                f"decision state of {owner} holds {row['balance']} but the log folds to"
                f" {replayed.balance}"
            )
