"""`ledgerbus audit --service tracking`: the platform's replay and row comparison, plus:

- one entry per command (an entry id appears once in the log);
- the processor's streams agree with the fold (no stream behind the log);
- every day with an entry was rewarded by the policy (its decision state), and no day
  without one; both only for what is older than `POLICY_GRACE_SECONDS`, since the policy and
  the projector read `tracking.events` each at its own pace (found by review).
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.tracking.domain.model import reward_day
from services.tracking.projections.tracking_view import TRACKING_PROJECTIONS, UserRow
from services.tracking.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    PROCESSOR_NAME,
    PROJECTOR_NAME,
    SCHEMA,
)
from shared.contracts.base import utc_now
from shared.contracts.tracking import EntryRegistered
from shared.engine.audit import audit_projections
from shared.engine.audit_report import AuditReport
from shared.engine.projection import Applied
from shared.engine.replay import ReplayState
from shared.observability.consumers import ConsumerWatch
from shared.settings import PlatformSettings

VIOLATIONS_LISTED_MAX = 50
POLICY_GRACE_SECONDS = 30
"""How far the daily-reward policy and the projector may be apart before the audit calls a
difference between them a violation."""


class TrackingChecks:
    def __init__(self) -> None:
        self._entries: dict[UUID, str] = {}
        self.repeated_entries: list[UUID] = []
        self.days: dict[tuple[UUID, Any], datetime] = {}
        """Each user's days with an entry, and when the first of them was registered."""

    def observe(self, event: Any, applied: Applied) -> None:
        assert isinstance(event, EntryRegistered), "tracking events only"
        first = self._entries.setdefault(event.entry_id, applied.event_id)
        if first != applied.event_id:
            self.repeated_entries.append(event.entry_id)
        self.days.setdefault((event.user_id, reward_day(event)), event.created_on)

    async def check(
        self, report: AuditReport, live: asyncpg.Connection, replay: ReplayState,
        until: datetime | None,
    ) -> None:  # fmt: skip
        for entry_id in self.repeated_entries[:VIOLATIONS_LISTED_MAX]:
            report.violations.append(f"entry {entry_id} was registered more than once")
        if until is not None:
            return
        users: dict[tuple[Any, ...], UserRow] = replay.states[0]
        for row in await live.fetch("SELECT user_id, sequence FROM tracking.streams"):
            replayed = users.get((row["user_id"],))
            if row["sequence"] < (replayed.sequence if replayed else 0):
                report.violations.append(
                    f"decision state of user {row['user_id']} is at sequence {row['sequence']}"
                    f" but the log has {replayed.sequence if replayed else 0}"
                )
        await self._check_rewards(report, live)

    async def _check_rewards(self, report: AuditReport, live: asyncpg.Connection) -> None:
        settled = utc_now() - timedelta(seconds=POLICY_GRACE_SECONDS)
        rows = await live.fetch("SELECT user_id, day, rewarded_at FROM tracking.rewarded_days")
        rewarded = {(row["user_id"], row["day"]): row["rewarded_at"] for row in rows}
        unearned = sorted(
            key for key, at in rewarded.items() if key not in self.days and at < settled
        )
        missed = sorted(
            key for key, at in self.days.items() if key not in rewarded and at < settled
        )
        for user_id, day in unearned[:VIOLATIONS_LISTED_MAX]:
            report.violations.append(f"user {user_id} was rewarded for {day} without an entry")
        for user_id, day in missed[:VIOLATIONS_LISTED_MAX]:
            report.violations.append(f"user {user_id} has entries on {day} but no reward")


def _watches(settings: PlatformSettings) -> list[ConsumerWatch]:
    return [
        ConsumerWatch(SCHEMA, PROCESSOR_NAME, settings.topic(COMMANDS_TOPIC)),
        ConsumerWatch(SCHEMA, PROCESSOR_NAME, settings.topic(EVENTS_TOPIC)),
        ConsumerWatch(SCHEMA, PROJECTOR_NAME, settings.topic(EVENTS_TOPIC)),
    ]


async def run_audit(
    settings: PlatformSettings,
    until: datetime | None,
    on_total: Callable[[int], None],
    on_progress: Callable[[int], None],
) -> AuditReport:
    return await audit_projections(
        settings, SCHEMA, TRACKING_PROJECTIONS, _watches(settings), checks=TrackingChecks(),
        until=until, on_total=on_total, on_progress=on_progress,
    )  # fmt: skip
