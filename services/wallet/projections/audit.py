"""`ledgerbus audit --service wallet`: the platform's replay and row comparison, plus the
wallet's own invariants on the same snapshot:

- no negative balance, in the live read model and at any event of the log (the fold halts);
- conservation: `sum(balances) + in flight - issued == 0`, live and replayed;
- one outcome per transfer (one Idempotency-Key): one sender decision, one credit decision and
  one settlement at most, every settled transfer was debited, and its money went one way
  (credited or refunded, never both);
- no transfer pending longer than its deadline allows;
- the processor's wallets agree with the fold, and every transfer it decided is in the log;
- with `--until`, each wallet's balance as of the cut equals the fold up to the cut.
"""

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.wallet.projections.wallet_view import (
    SYSTEM_TOTALS_SQL,
    WALLET_PROJECTIONS,
    BalanceRow,
    TransferCreditRow,
    TransferDebitRow,
)
from services.wallet.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    PROCESSOR_NAME,
    PROJECTOR_NAME,
    SCHEMA,
    WalletSettings,
)
from shared.contracts.base import utc_now
from shared.contracts.wallet import (
    CreditRefused,
    TransferCredited,
    TransferDebited,
    TransferRejected,
    TransferSettled,
)
from shared.engine.audit import audit_projections
from shared.engine.audit_report import AuditReport
from shared.engine.projection import Applied
from shared.engine.replay import ReplayState
from shared.observability.consumers import ConsumerWatch
from shared.settings import PlatformSettings

VIOLATIONS_LISTED_MAX = 50
DECISION_EVENT_GRACE_SECONDS = 30
"""A transfer decided this recently may still have its event in the outbox."""
PENDING_GRACE_FACTOR = 3
"""A transfer may stay pending this many deadlines (the ask, the answer, a restart) at most."""

TransferEvent = TransferDebited | TransferRejected | TransferCredited | CreditRefused
SENDER_DECISIONS = (TransferDebited, TransferRejected)


class WalletChecks:
    def __init__(self, deadline_seconds: float) -> None:
        self._deadline = timedelta(seconds=deadline_seconds)
        self._decisions: Counter[tuple[UUID, str]] = Counter()
        self._debited_at: dict[UUID, datetime] = {}
        self.transfers_seen: set[UUID] = set()

    def observe(self, event: Any, applied: Applied) -> None:
        if isinstance(event, SENDER_DECISIONS):
            self._decisions[(event.transfer_id, "sender")] += 1
            self.transfers_seen.add(event.transfer_id)
            if isinstance(event, TransferDebited):
                self._debited_at[event.transfer_id] = event.debited_at
        elif isinstance(event, TransferCredited | CreditRefused):
            self._decisions[(event.transfer_id, "credit")] += 1
        elif isinstance(event, TransferSettled):
            self._decisions[(event.transfer_id, "settlement")] += 1
            if event.transfer_id not in self._debited_at:
                self._decisions[(event.transfer_id, "settled without a debit")] += 1
            self._debited_at.pop(event.transfer_id, None)

    async def check(
        self, report: AuditReport, live: asyncpg.Connection, replay: ReplayState,
        until: datetime | None,
    ) -> None:  # fmt: skip
        self._check_outcomes(report)
        await _check_live(report, live)
        _check_replayed(report, replay)
        if until is None:
            self._check_pending(report)
            await _check_decision_state(report, live, replay.states[0])
            await self._check_transfers_in_log(report, live)
        else:
            await _check_balances_at_cut(report, live, replay.states[0], until)

    def _check_outcomes(self, report: AuditReport) -> None:
        listed = 0
        for (transfer_id, kind), count in sorted(self._decisions.items(), key=str):
            broken = kind == "settled without a debit" or count > 1
            if broken and listed < VIOLATIONS_LISTED_MAX:
                listed += 1
                what = kind if kind == "settled without a debit" else f"{count} {kind} decisions"
                report.violations.append(f"transfer {transfer_id}: {what} in the log")

    def _check_pending(self, report: AuditReport) -> None:
        oldest = utc_now() - self._deadline * PENDING_GRACE_FACTOR
        stuck = sorted(t for t, at in self._debited_at.items() if at < oldest)
        for transfer_id in stuck[:VIOLATIONS_LISTED_MAX]:
            report.violations.append(
                f"transfer {transfer_id} is pending since {self._debited_at[transfer_id]}"
                f" (its deadline is {self._deadline.total_seconds():g} s)"
            )

    async def _check_transfers_in_log(self, report: AuditReport, live: asyncpg.Connection) -> None:
        rows = await live.fetch(
            "SELECT transfer_id FROM wallet.transfers WHERE created_at < now() - $1::interval",
            timedelta(seconds=DECISION_EVENT_GRACE_SECONDS),
        )
        missing = [
            row["transfer_id"] for row in rows if row["transfer_id"] not in self.transfers_seen
        ]
        for transfer_id in missing[:VIOLATIONS_LISTED_MAX]:
            report.violations.append(
                f"transfer {transfer_id} was decided but has no event in the log"
            )


async def _check_live(report: AuditReport, live: asyncpg.Connection) -> None:
    negative = await live.fetch(
        "SELECT user_id, balance FROM wallet.balances WHERE balance < 0 ORDER BY 1 LIMIT $1",
        VIOLATIONS_LISTED_MAX,
    )
    for row in negative:
        report.violations.append(f"negative balance {row['user_id']} = {row['balance']}")
    totals = await live.fetchrow(SYSTEM_TOTALS_SQL)
    assert totals is not None, "an aggregate query returns one row"
    if totals["total_user_balance"] + totals["system_balance"] != 0:
        report.violations.append(
            f"conservation broken in the read model: users hold {totals['total_user_balance']}"
            f" (in flight {totals['in_flight']}) but the system account stands at"
            f" {totals['system_balance']}"
        )


def _check_replayed(report: AuditReport, replay: ReplayState) -> None:
    balances: dict[tuple[Any, ...], BalanceRow] = replay.states[0]
    debits: dict[tuple[Any, ...], TransferDebitRow] = replay.states[1]
    credits: dict[tuple[Any, ...], TransferCreditRow] = replay.states[2]
    held = sum(row.balance for row in balances.values())
    issued = sum(row.issued for row in balances.values())
    in_flight = sum(row.debited - row.refunded for row in debits.values())
    in_flight -= sum(row.credited for row in credits.values())
    if held + in_flight - issued != 0:
        report.violations.append(
            f"conservation broken in the log: wallets hold {held}, {in_flight} is in flight,"
            f" the system account issued {issued}"
        )
    check_each_transfer(report, debits, credits)


def check_each_transfer(
    report: AuditReport,
    debits: dict[tuple[Any, ...], TransferDebitRow],
    credits: dict[tuple[Any, ...], TransferCreditRow],
) -> None:
    """Each transfer's money went one way: a transfer both credited and refunded nets to zero
    in the sum above (its in-flight amount is negative), so it is checked on its own."""
    listed = 0
    for key, debit in sorted(debits.items(), key=str):
        credited = credits[key].credited if key in credits else 0
        in_flight = debit.debited - debit.refunded - credited
        settled = debit.status != "pending"
        if (in_flight < 0 or (settled and in_flight != 0)) and listed < VIOLATIONS_LISTED_MAX:
            listed += 1
            report.violations.append(
                f"transfer {debit.transfer_id} ({debit.status}): debited {debit.debited},"
                f" credited {credited}, refunded {debit.refunded}"
            )


async def _check_decision_state(
    report: AuditReport, live: asyncpg.Connection, balances: dict[tuple[Any, ...], BalanceRow]
) -> None:
    """The processor's wallets agree with the log wherever both have seen the same events."""
    for row in await live.fetch("SELECT user_id, balance, sequence FROM wallet.wallets"):
        replayed = balances.get((row["user_id"],))
        replayed_sequence = replayed.sequence if replayed else 0
        if row["sequence"] < replayed_sequence:
            report.violations.append(
                f"decision state of wallet {row['user_id']} is at sequence {row['sequence']} but"
                f" the log has {replayed_sequence}"
            )
        elif (
            replayed and row["sequence"] == replayed_sequence and row["balance"] != replayed.balance
        ):
            report.violations.append(
                f"decision state of wallet {row['user_id']} holds {row['balance']} but the log"
                f" folds to {replayed.balance}"
            )


async def _check_balances_at_cut(
    report: AuditReport, live: asyncpg.Connection,
    balances: dict[tuple[Any, ...], BalanceRow], until: datetime,
) -> None:  # fmt: skip
    rows = await live.fetch(
        "SELECT DISTINCT ON (user_id) user_id, balance FROM wallet.movements"
        " WHERE created_at <= $1 ORDER BY user_id, sequence DESC",
        until,
    )
    at_cut = {(row["user_id"],): row["balance"] for row in rows}
    replayed = {key: row.balance for key, row in balances.items()}
    for key in sorted(set(at_cut) | set(replayed), key=str):
        report.rows_compared += 1
        if at_cut.get(key, 0) != replayed.get(key, 0):
            report.add_difference(
                f"balance of wallet {key[0]} as of the cut: live movements say"
                f" {at_cut.get(key, 0)}, the log folds to {replayed.get(key, 0)}"
            )


def _watches(settings: PlatformSettings) -> list[ConsumerWatch]:
    return [
        ConsumerWatch(SCHEMA, PROCESSOR_NAME, settings.topic(COMMANDS_TOPIC)),
        ConsumerWatch(SCHEMA, PROJECTOR_NAME, settings.topic(EVENTS_TOPIC)),
    ]


async def run_audit(
    settings: PlatformSettings,
    until: datetime | None,
    on_total: Callable[[int], None],
    on_progress: Callable[[int], None],
) -> AuditReport:
    checks = WalletChecks(WalletSettings().wallet_transfer_deadline_seconds)
    return await audit_projections(
        settings, SCHEMA, WALLET_PROJECTIONS, _watches(settings), checks=checks, until=until,
        on_total=on_total, on_progress=on_progress,
    )  # fmt: skip
