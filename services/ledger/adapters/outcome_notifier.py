"""Telling waiting gateways their commands' answers, with NOTIFY inside the deciding transaction.

PostgreSQL delivers the notification when the transaction commits, that is exactly when the
answer becomes durable. Only commands the gateway marked as awaited are notified.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from services.ledger.domain.model import PriorDecision
from services.ledger.domain.outcomes import Outcome, decision_outcome

OUTCOME_CHANNEL = "ledger_outcomes"
"""PostgreSQL NOTIFY channel on which gateways wait for their commands' answers."""
NOTIFY_PAYLOAD_MAX_BYTES = 7_900
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes or more."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What one awaited command will be told, once the position of its decision is known."""

    command_id: str
    decision: PriorDecision | None = None
    first: bool = False
    position: str | None = None
    error: Outcome | None = None

    @property
    def ready(self) -> bool:
        return self.error is not None or self.position is not None


def payload(answer: Answer, position: str | None) -> str:
    if answer.error is not None:
        outcome = answer.error
    else:
        assert answer.decision is not None
        assert position is not None
        outcome = decision_outcome(answer.decision, position, first=answer.first)
    text = orjson.dumps(
        {"command_id": answer.command_id, "status": outcome.status, "body": outcome.body}
    ).decode()
    assert len(text.encode()) < NOTIFY_PAYLOAD_MAX_BYTES, "identifiers are bounded"
    return text


async def notify(connection: asyncpg.Connection, payloads: Sequence[str]) -> None:
    if payloads:
        await connection.execute(
            "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
            OUTCOME_CHANNEL,
            list(payloads),
        )
