"""The ledger processor's decision state for one batch: accounts and nonce decisions.

Loaded once per batch for every owner and nonce the batch names, changed in memory as commands
are decided in log order, and written back with one statement per table inside the partition
owner's transaction (the engine calls `save`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.ledger.domain.model import Account, CommandIdentity, NonceDecision, Status
from shared.contracts.ledger import RecordEntry
from shared.engine.messages import Emitted
from shared.engine.partition_handler import TransientError

DECISION_COLUMNS = (
    "app, nonce, owner_id, operation, amount, status, code, detail, entry_id, balance,"
    " sequence, decided_at, command_id, command_source, event_id"
)


class AccountRaceError(TransientError):
    """An account moved under this batch (it should have one decider); retry on fresh state."""


class NonceRaceError(TransientError):
    """Another partition decided one of this batch's nonces concurrently; retry the batch."""


@dataclass(frozen=True, slots=True)
class KnownDecision:
    decision: NonceDecision
    emitted: Emitted | None
    """Set when the decision was made in this batch: its event's position is not known yet."""


def decision_from_row(row: asyncpg.Record) -> NonceDecision:
    return NonceDecision(
        app=row["app"], nonce=row["nonce"], owner_id=row["owner_id"],
        operation=row["operation"], amount=row["amount"], status=Status(row["status"]),
        code=row["code"], detail=row["detail"], entry_id=row["entry_id"],
        balance=row["balance"], sequence=row["sequence"], decided_at=row["decided_at"],
        decided_by=CommandIdentity(row["command_source"], row["command_id"]),
    )  # fmt: skip


class LedgerState:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._accounts: dict[tuple[str, str], Account] = {}
        self._loaded_accounts: dict[tuple[str, str], Account] = {}
        self._decisions: dict[tuple[str, str], KnownDecision] = {}
        self._new_decisions: list[tuple[NonceDecision, str]] = []

    async def load(self, commands: Sequence[RecordEntry]) -> None:
        """Read the accounts and nonce decisions these commands need (not read before)."""
        owners = sorted({(c.app, c.owner_id) for c in commands} - set(self._accounts))
        nonces = sorted({(c.app, c.nonce) for c in commands} - set(self._decisions))
        account_rows = await self._connection.fetch(
            "SELECT a.app, a.owner_id, a.balance, a.sequence FROM ledger.accounts a"
            " JOIN unnest($1::text[], $2::text[]) AS k(app, owner_id) USING (app, owner_id)",
            [owner[0] for owner in owners],
            [owner[1] for owner in owners],
        )
        for row in account_rows:
            account = Account(row["app"], row["owner_id"], row["balance"], row["sequence"])
            self._accounts[(account.app, account.owner_id)] = account
            self._loaded_accounts[(account.app, account.owner_id)] = account
        decision_rows = await self._connection.fetch(
            f"SELECT {DECISION_COLUMNS} FROM ledger.decisions d"
            " JOIN unnest($1::text[], $2::text[]) AS k(app, nonce) USING (app, nonce)",
            [nonce[0] for nonce in nonces],
            [nonce[1] for nonce in nonces],
        )
        for row in decision_rows:
            self._decisions[(row["app"], row["nonce"])] = KnownDecision(
                decision_from_row(row), None
            )

    def account(self, app: str, owner_id: str) -> Account:
        return self._accounts.get((app, owner_id)) or Account(app, owner_id, 0, 0)

    def decision(self, app: str, nonce: str) -> KnownDecision | None:
        return self._decisions.get((app, nonce))

    def record(self, decision: NonceDecision, account: Account, emitted: Emitted) -> None:
        """A new decision, the account after it, and the event that records it."""
        assert (decision.app, decision.nonce) not in self._decisions, "a nonce decides once"
        self._accounts[(account.app, account.owner_id)] = account
        self._decisions[(decision.app, decision.nonce)] = KnownDecision(decision, emitted)
        self._new_decisions.append((decision, emitted.message_id))

    async def save(self, connection: asyncpg.Connection, now: datetime) -> None:
        """Write the batch's new decisions and the accounts that moved."""
        assert connection is self._connection, "one batch, one connection"
        if self._new_decisions:
            await self._insert_decisions()
        changed = [
            account
            for key, account in self._accounts.items()
            if self._loaded_accounts.get(key) != account
        ]
        if changed:
            await self._save_accounts(changed, now)

    async def _save_accounts(self, accounts: Sequence[Account], now: datetime) -> None:
        """Optimistic: an account only moves on from the sequence this batch read.

        One partition owner decides each account, so this never fails in normal operation; if a
        misrouted command (a changed partition count) ever let two owners decide one account,
        the second batch rolls back and retries on fresh state instead of overwriting the first.
        """
        loaded = self._loaded_accounts
        existing = [a for a in accounts if (a.app, a.owner_id) in loaded]
        fresh = [a for a in accounts if (a.app, a.owner_id) not in loaded]
        written = 0
        if existing:
            rows = await self._connection.fetch(
                "UPDATE ledger.accounts a SET balance = u.balance, sequence = u.sequence,"
                " updated_at = $6 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],"
                " $5::bigint[]) AS u(app, owner_id, balance, sequence, expected)"
                " WHERE a.app = u.app AND a.owner_id = u.owner_id AND a.sequence = u.expected"
                " RETURNING 1",
                *_columns(existing, ("app", "owner_id", "balance", "sequence")),
                [loaded[(a.app, a.owner_id)].sequence for a in existing],
                now,
            )
            written += len(rows)
        if fresh:
            rows = await self._connection.fetch(
                "INSERT INTO ledger.accounts (app, owner_id, balance, sequence, updated_at)"
                " SELECT a.*, $5::timestamptz FROM unnest($1::text[], $2::text[], $3::bigint[],"
                " $4::bigint[]) AS a ON CONFLICT (app, owner_id) DO NOTHING RETURNING 1",
                *_columns(fresh, ("app", "owner_id", "balance", "sequence")),
                now,
            )
            written += len(rows)
        if written != len(accounts):
            raise AccountRaceError("an account of this batch was changed by another decider")

    async def _insert_decisions(self) -> None:
        decisions = [decision for decision, _ in self._new_decisions]
        inserted = await self._connection.fetch(
            "INSERT INTO ledger.decisions (app, nonce, owner_id, operation, amount, status, code,"
            " detail, entry_id, balance, sequence, decided_at, command_id, command_source,"
            " event_id) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
            " $5::bigint[], $6::text[], $7::text[], $8::text[], $9::uuid[], $10::bigint[],"
            " $11::bigint[], $12::timestamptz[], $13::text[], $14::text[], $15::text[])"
            " ON CONFLICT (app, nonce) DO NOTHING RETURNING 1",
            *_columns(
                decisions,
                ("app", "nonce", "owner_id", "operation", "amount", "status", "code", "detail",
                 "entry_id", "balance", "sequence", "decided_at"),
            ),
            [decision.decided_by.command_id for decision in decisions],
            [decision.decided_by.source for decision in decisions],
            [event_id for _, event_id in self._new_decisions],
        )  # fmt: skip
        if len(inserted) != len(decisions):
            raise NonceRaceError(
                "a nonce of this batch was decided concurrently by another partition"
            )


def _columns(rows: Sequence[Any], names: Sequence[str]) -> list[list[Any]]:
    return [[getattr(row, name) for row in rows] for name in names]
