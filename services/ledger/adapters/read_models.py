"""Reads for the gateway: balances, entries, checkpoints and stored command answers."""

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import asyncpg

from services.ledger.adapters.decision_store import decision_from_row
from services.ledger.domain.outcomes import HTTP_CONFLICT, HTTP_UNPROCESSABLE, decision_outcome
from services.ledger.settings import EVENTS_TOPIC, PROJECTOR_NAME


class LedgerReads:
    def __init__(self, pool: asyncpg.Pool, events_topic: str = EVENTS_TOPIC) -> None:
        self._pool = pool
        self._events_topic = events_topic

    async def balance(self, app: str, owner_id: str, partition: int) -> asyncpg.Record:
        """The owner's row (or NULLs) with its partition's checkpoint, read in one snapshot."""
        row = await self._pool.fetchrow(
            "SELECT b.balance, b.last_updated, b.position, c.next_offset AS checkpoint"
            " FROM (SELECT 1) AS one"
            " LEFT JOIN ledger.balances b ON b.app = $1 AND b.owner_id = $2"
            " LEFT JOIN ledger.checkpoints c ON c.consumer = $3 AND c.topic = $4"
            " AND c.partition = $5",
            app,
            owner_id,
            PROJECTOR_NAME,
            self._events_topic,
            partition,
        )
        assert row is not None
        return row

    async def entries(
        self, app: str, owner_id: str, limit: int, before_sequence: int | None
    ) -> list[asyncpg.Record]:
        return list(
            await self._pool.fetch(
                "SELECT id, app, owner_id, operation, amount, nonce, created_on, balance, sequence,"
                " position FROM ledger.entries WHERE app = $1 AND owner_id = $2"
                " AND ($3::bigint IS NULL OR sequence < $3) ORDER BY sequence DESC LIMIT $4",
                app,
                owner_id,
                before_sequence,
                limit,
            )
        )

    async def entry_sequence(self, app: str, owner_id: str, entry_id: UUID) -> int | None:
        value = await self._pool.fetchval(
            "SELECT sequence FROM ledger.entries WHERE id = $1 AND app = $2 AND owner_id = $3",
            entry_id,
            app,
            owner_id,
        )
        return None if value is None else int(value)

    async def checkpoints(self) -> Mapping[int, int]:
        rows = await self._pool.fetch(
            "SELECT partition, next_offset FROM ledger.checkpoints"
            " WHERE consumer = $1 AND topic = $2",
            PROJECTOR_NAME,
            self._events_topic,
        )
        return {row["partition"]: row["next_offset"] for row in rows}

    async def stored_outcome(self, command_id: str) -> dict[str, Any] | None:
        """The answer a command got, or None while it is undecided or its event unpublished."""
        row = await self._pool.fetchrow(
            "SELECT o.app AS command_app, o.status AS answer_status, o.code AS answer_code,"
            " o.detail AS answer_detail, d.* FROM ledger.command_outcomes o"
            " LEFT JOIN ledger.decisions d ON d.app = o.app AND d.nonce = o.nonce"
            " WHERE o.command_id = $1",
            command_id,
        )
        if row is None:
            return None
        status = row["answer_status"]
        body: dict[str, Any]
        if row["answer_code"] in ("nonce_reused", "unknown_operation"):
            assert status in (HTTP_CONFLICT, HTTP_UNPROCESSABLE)
            body = {"detail": row["answer_detail"], "code": row["answer_code"]}
        else:
            stored = decision_from_row(row)
            if stored.position is None and status != HTTP_CONFLICT:
                return None
            outcome = decision_outcome(
                stored.decision,
                stored.position or "",
                first=stored.decision.command_id == command_id,
            )
            body = outcome.body
        return {"command_id": command_id, "app": row["command_app"], "status": status, "body": body}
