"""The tracking processor's decision state for one batch: loaded by the handlers, saved once.

A stream row belongs to the partition of its user on `tracking.commands`, a rewarded day to the
partition of its user on `tracking.events`; each has one writer. One statement per table per
batch.
"""

from collections.abc import Iterable
from datetime import date, datetime
from uuid import UUID

import asyncpg


class TrackingState:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.sequences: dict[UUID, int] = {}
        self.rewarded: set[tuple[UUID, date]] = set()
        self._checked_days: set[tuple[UUID, date]] = set()
        self._dirty_sequences: set[UUID] = set()
        self._new_days: dict[tuple[UUID, date], datetime] = {}

    async def load_sequences(self, user_ids: Iterable[UUID]) -> None:
        wanted = sorted(set(user_ids) - self.sequences.keys())
        if not wanted:
            return
        rows = await self._connection.fetch(
            "SELECT user_id, sequence FROM tracking.streams WHERE user_id = ANY($1::uuid[])",
            wanted,
        )
        self.sequences.update(dict.fromkeys(wanted, 0))
        self.sequences.update({row["user_id"]: row["sequence"] for row in rows})

    def next_sequence(self, user_id: UUID) -> int:
        assert user_id in self.sequences, "streams are loaded before entries are decided"
        self.sequences[user_id] += 1
        self._dirty_sequences.add(user_id)
        return self.sequences[user_id]

    async def load_days(self, days: Iterable[tuple[UUID, date]]) -> None:
        wanted = sorted(set(days) - self._checked_days)
        if not wanted:
            return
        rows = await self._connection.fetch(
            "SELECT d.user_id, d.day FROM tracking.rewarded_days d"
            " JOIN unnest($1::uuid[], $2::date[]) AS k(user_id, day) USING (user_id, day)",
            [user for user, _ in wanted], [day for _, day in wanted],
        )  # fmt: skip
        self._checked_days.update(wanted)
        self.rewarded.update((row["user_id"], row["day"]) for row in rows)

    def reward(self, user_id: UUID, day: date, now: datetime) -> bool:
        """True when this is the day's first reward for the user (and marks it given)."""
        assert (user_id, day) in self._checked_days, "days are loaded before they are decided"
        if (user_id, day) in self.rewarded:
            return False
        self.rewarded.add((user_id, day))
        self._new_days[(user_id, day)] = now
        return True

    async def save(self, connection: asyncpg.Connection, now: datetime) -> None:
        if self._dirty_sequences:
            users = sorted(self._dirty_sequences)
            await connection.execute(
                "INSERT INTO tracking.streams (user_id, sequence)"
                " SELECT * FROM unnest($1::uuid[], $2::bigint[])"
                " ON CONFLICT (user_id) DO UPDATE SET sequence = EXCLUDED.sequence",
                users, [self.sequences[user] for user in users],
            )  # fmt: skip
        if self._new_days:
            keys = sorted(self._new_days)
            await connection.execute(
                "INSERT INTO tracking.rewarded_days (user_id, day, rewarded_at)"
                " SELECT * FROM unnest($1::uuid[], $2::date[], $3::timestamptz[])",
                [user for user, _ in keys], [day for _, day in keys],
                [self._new_days[key] for key in keys],
            )  # fmt: skip
