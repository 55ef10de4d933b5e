"""`ledgerbus audit --service ledger`: the platform's replay and comparison, plus the ledger's
own invariants on the same snapshot:

- no negative balance, and in each app the balances add up to the entries (conservation);
- one outcome per nonce in the whole log;
- the processor's decision state (accounts) agrees with the fold of the log;
- every decision has its event in the log (or waiting in the outbox);
- with `--until`, each owner's balance as of the cut equals the fold up to the cut.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from services.ledger.projections.ledger_view import LEDGER_PROJECTIONS, BalanceRow
from shared.contracts.ledger import EntryRecorded, EntryRejected
from shared.engine.audit import audit_projections
from shared.engine.audit_report import AuditReport
from shared.engine.projection import Applied
from shared.engine.replay import ReplayState
from shared.observability.consumers import ConsumerWatch
from shared.settings import PlatformSettings

VIOLATIONS_LISTED_MAX = 50
DECISIONS_FETCHED_PER_ROUND = 10_000


class LedgerChecks:
    def __init__(self) -> None:
        self._nonces: dict[tuple[str, str], str] = {}
        self.conflicting_nonces: list[str] = []

    def observe(self, event: Any, applied: Applied) -> None:
        assert isinstance(event, EntryRecorded | EntryRejected), "ledger events only"
        first = self._nonces.setdefault((event.app, event.nonce), applied.event_id)
        if first != applied.event_id:
            self.conflicting_nonces.append(f"{event.app}:{event.nonce}")

    async def check(
        self,
        report: AuditReport,
        live: asyncpg.Connection,
        replay: ReplayState,
        until: datetime | None,
    ) -> None:
        for nonce in self.conflicting_nonces[:VIOLATIONS_LISTED_MAX]:
            report.violations.append(f"nonce {nonce} has more than one outcome in the log")
        await _check_balances(report, live)
        balances: dict[tuple[Any, ...], BalanceRow] = replay.states[0]
        if until is None:
            await _check_decision_state(report, live, balances)
            await _check_decisions_have_events(report, live, replay)
        else:
            await _check_balances_at_cut(report, live, balances, until)


async def _check_balances(report: AuditReport, live: asyncpg.Connection) -> None:
    negative = await live.fetch(
        "SELECT app, owner_id, balance FROM ledger.balances WHERE balance < 0 ORDER BY 1, 2"
        " LIMIT $1",
        VIOLATIONS_LISTED_MAX,
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


async def _check_decision_state(
    report: AuditReport, live: asyncpg.Connection, balances: dict[tuple[Any, ...], BalanceRow]
) -> None:
    """The processor's accounts agree with the log wherever both have seen the same events."""
    rows = await live.fetch("SELECT app, owner_id, balance, sequence FROM ledger.accounts")
    for row in rows:
        replayed = balances.get((row["app"], row["owner_id"]))
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


async def _check_decisions_have_events(
    report: AuditReport, live: asyncpg.Connection, replay: ReplayState
) -> None:
    """A decision whose event is neither in the log nor waiting in the outbox was lost."""
    missing = 0
    async for row in live.cursor(
        "SELECT d.app, d.nonce, d.event_id FROM ledger.decisions d WHERE NOT EXISTS"
        " (SELECT 1 FROM ledger.outbox o WHERE o.message_id = d.event_id)",
        prefetch=DECISIONS_FETCHED_PER_ROUND,
    ):
        if row["event_id"] in replay.event_ids:
            continue
        missing += 1
        if missing <= VIOLATIONS_LISTED_MAX:
            report.violations.append(
                f"decision {row['app']}:{row['nonce']} has no event in the log"
                f" (event {row['event_id']})"
            )
    if missing > VIOLATIONS_LISTED_MAX:
        report.violations.append(f"... {missing} decisions in all have no event in the log")


async def _check_balances_at_cut(
    report: AuditReport,
    live: asyncpg.Connection,
    balances: dict[tuple[Any, ...], BalanceRow],
    until: datetime,
) -> None:
    """As of a cut, an owner's balance is the balance after its last entry before it."""
    rows = await live.fetch(
        "SELECT DISTINCT ON (app, owner_id) app, owner_id, balance FROM ledger.entries"
        " WHERE created_on <= $1 ORDER BY app, owner_id, sequence DESC",
        until,
    )
    at_cut = {(row["app"], row["owner_id"]): row["balance"] for row in rows}
    replayed = {key: row.balance for key, row in balances.items() if key in at_cut or row.balance}
    for key in sorted(set(at_cut) | set(replayed)):
        report.rows_compared += 1
        if at_cut.get(key, 0) != replayed.get(key, 0):
            report.add_difference(
                f"balance {key[0]}:{key[1]} as of the cut: live entries say"
                f" {at_cut.get(key, 0)}, the log folds to {replayed.get(key, 0)}"
            )


def _watches(settings: PlatformSettings) -> list[ConsumerWatch]:
    return [
        ConsumerWatch("ledger", "ledger-processor", settings.topic("ledger.commands")),
        ConsumerWatch("ledger", "ledger-projector", settings.topic("ledger.events")),
    ]


async def run_audit(
    settings: PlatformSettings,
    until: datetime | None,
    on_total: Callable[[int], None],
    on_progress: Callable[[int], None],
) -> AuditReport:
    return await audit_projections(
        settings, "ledger", LEDGER_PROJECTIONS, _watches(settings), checks=LedgerChecks(),
        until=until, on_total=on_total, on_progress=on_progress,
    )  # fmt: skip
