"""Decision state of ledger-processor: accounts, nonce decisions and command outcomes.

Every method takes the connection of the partition owner's open transaction and touches all
rows of a batch in one statement.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.ledger.domain.model import Account, PriorDecision, Status
from shared.kafka.partition_handler import TransientError
from shared.kafka.positions import format_position


@dataclass(frozen=True, slots=True)
class StoredDecision:
    decision: PriorDecision
    position: str | None


@dataclass(frozen=True, slots=True)
class CommandRecord:
    command_id: str
    app: str
    nonce: str
    owner_id: str
    operation: str
    status: int
    code: str | None
    detail: str | None
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    accounts: dict[tuple[str, str], Account]
    decisions: dict[tuple[str, str], StoredDecision]
    commands: dict[str, CommandRecord]


class AccountRaceError(TransientError):
    """An account moved under this batch (it should have one decider); retry on fresh state."""


class NonceRaceError(TransientError):
    """Another partition decided one of this batch's nonces concurrently; retry the batch."""


DECISION_COLUMNS = (
    "app, nonce, owner_id, operation, amount, status, code, detail, entry_id, balance,"
    " sequence, decided_at, command_id, event_partition, event_offset"
)


def decision_from_row(row: asyncpg.Record) -> StoredDecision:
    decision = PriorDecision(
        app=row["app"],
        nonce=row["nonce"],
        owner_id=row["owner_id"],
        operation=row["operation"],
        amount=row["amount"],
        status=Status(row["status"]),
        code=row["code"],
        detail=row["detail"],
        entry_id=row["entry_id"],
        balance=row["balance"],
        sequence=row["sequence"],
        decided_at=row["decided_at"],
        command_id=row["command_id"],
    )
    position = None
    if row["event_offset"] is not None:
        position = format_position(row["event_partition"], row["event_offset"])
    return StoredDecision(decision, position)


class DecisionStore:
    async def load(
        self,
        connection: asyncpg.Connection,
        owners: Sequence[tuple[str, str]],
        nonces: Sequence[tuple[str, str]],
        command_ids: Sequence[str],
    ) -> Snapshot:
        account_rows = await connection.fetch(
            "SELECT a.app, a.owner_id, a.balance, a.sequence FROM ledger.accounts a"
            " JOIN unnest($1::text[], $2::text[]) AS k(app, owner_id) USING (app, owner_id)",
            [owner[0] for owner in owners],
            [owner[1] for owner in owners],
        )
        decision_rows = await connection.fetch(
            f"SELECT {DECISION_COLUMNS} FROM ledger.decisions d"
            " JOIN unnest($1::text[], $2::text[]) AS k(app, nonce) USING (app, nonce)",
            [nonce[0] for nonce in nonces],
            [nonce[1] for nonce in nonces],
        )
        command_rows = await connection.fetch(
            "SELECT command_id, app, nonce, owner_id, operation, status, code, detail, decided_at"
            " FROM ledger.command_outcomes WHERE command_id = ANY($1::text[])",
            list(command_ids),
        )
        return Snapshot(
            accounts={
                (row["app"], row["owner_id"]): Account(
                    row["app"], row["owner_id"], row["balance"], row["sequence"]
                )
                for row in account_rows
            },
            decisions={(row["app"], row["nonce"]): decision_from_row(row) for row in decision_rows},
            commands={row["command_id"]: CommandRecord(**dict(row)) for row in command_rows},
        )

    async def save(
        self,
        connection: asyncpg.Connection,
        *,
        decisions: Sequence[tuple[PriorDecision, str]],
        accounts: Sequence[Account],
        loaded: Mapping[tuple[str, str], Account],
        commands: Sequence[CommandRecord],
        now: datetime,
    ) -> None:
        """Write a batch's new decisions (with their event ids), accounts and command answers."""
        if decisions:
            await self._insert_decisions(connection, decisions)
        if accounts:
            await self._save_accounts(connection, accounts, loaded, now)
        if commands:
            await connection.execute(
                "INSERT INTO ledger.command_outcomes (command_id, app, nonce, owner_id, operation,"
                " status, code, detail, decided_at) SELECT * FROM unnest($1::text[], $2::text[],"
                " $3::text[], $4::text[], $5::text[], $6::smallint[], $7::text[], $8::text[],"
                " $9::timestamptz[]) ON CONFLICT (command_id) DO NOTHING",
                *_columns(
                    commands,
                    ("command_id", "app", "nonce", "owner_id", "operation", "status", "code",
                     "detail", "decided_at"),
                ),
            )  # fmt: skip

    async def _save_accounts(
        self,
        connection: asyncpg.Connection,
        accounts: Sequence[Account],
        loaded: Mapping[tuple[str, str], Account],
        now: datetime,
    ) -> None:
        """Optimistic: an account only moves on from the sequence this batch read.

        One partition owner decides each account, so this never fails in normal operation; if a
        misrouted command ever let two owners decide one account, the second batch would roll
        back and retry on fresh state instead of overwriting the first one's decision.
        """
        existing = [a for a in accounts if (a.app, a.owner_id) in loaded]
        fresh = [a for a in accounts if (a.app, a.owner_id) not in loaded]
        written = 0
        if existing:
            rows = await connection.fetch(
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
            rows = await connection.fetch(
                "INSERT INTO ledger.accounts (app, owner_id, balance, sequence, updated_at)"
                " SELECT a.*, $5::timestamptz FROM unnest($1::text[], $2::text[], $3::bigint[],"
                " $4::bigint[]) AS a ON CONFLICT (app, owner_id) DO NOTHING RETURNING 1",
                *_columns(fresh, ("app", "owner_id", "balance", "sequence")),
                now,
            )
            written += len(rows)
        if written != len(accounts):
            raise AccountRaceError("an account of this batch was changed by another decider")

    async def _insert_decisions(
        self, connection: asyncpg.Connection, decisions: Sequence[tuple[PriorDecision, str]]
    ) -> None:
        rows = [decision for decision, _ in decisions]
        inserted = await connection.fetch(
            "INSERT INTO ledger.decisions (app, nonce, owner_id, operation, amount, status, code,"
            " detail, entry_id, balance, sequence, decided_at, command_id, event_id)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],"
            " $6::text[], $7::text[], $8::text[], $9::uuid[], $10::bigint[], $11::bigint[],"
            " $12::timestamptz[], $13::text[], $14::text[])"
            " ON CONFLICT (app, nonce) DO NOTHING RETURNING 1",
            *_columns(
                rows,
                ("app", "nonce", "owner_id", "operation", "amount", "status", "code", "detail",
                 "entry_id", "balance", "sequence", "decided_at", "command_id"),
            ),
            [event_id for _, event_id in decisions],
        )  # fmt: skip
        if len(inserted) != len(decisions):
            raise NonceRaceError(
                "a nonce of this batch was decided concurrently by another partition"
            )

    async def record_positions(
        self, connection: asyncpg.Connection, positions: Sequence[tuple[str, str, int, int]]
    ) -> None:
        """Store (app, nonce, partition, offset); the earliest offset wins if a publish repeated."""
        if not positions:
            return
        await connection.execute(
            "UPDATE ledger.decisions d SET event_partition = u.partition,"
            " event_offset = LEAST(COALESCE(d.event_offset, u.event_offset), u.event_offset)"
            " FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[])"
            " AS u(app, nonce, partition, event_offset)"
            " WHERE d.app = u.app AND d.nonce = u.nonce",
            *_columns_of_tuples(positions, 4),
        )


def _columns(rows: Sequence[Any], names: Sequence[str]) -> list[list[Any]]:
    return [[getattr(row, name) for row in rows] for name in names]


def _columns_of_tuples(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[row[index] for row in rows] for index in range(width)]
