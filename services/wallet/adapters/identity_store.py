"""Identity state, written by the gateway (ADR 0021): users, their sealing keys and their
login attempts. Credentials are state, not events: none of this enters the log."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

LOGIN_ATTEMPTS_MAX = 5
"""Attempts since the last success before the account locks."""
LOCK_FIRST_SECONDS = 30
LOCK_MAX_SECONDS = 900


@dataclass(frozen=True, slots=True)
class User:
    user_id: UUID
    email: str
    name_sealed: str
    email_sealed: str
    pin_hash: str
    created_at: datetime
    open_command_id: str


@dataclass(frozen=True, slots=True)
class NewUser:
    user: User
    email_key: str
    key: bytes


@dataclass(frozen=True, slots=True)
class Locked:
    until: datetime


USER_COLUMNS = "user_id, email, name_sealed, email_sealed, pin_hash, created_at, open_command_id"


class IdentityStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, new: NewUser) -> bool:
        """Insert the user and its key; False when the email is taken (the unique index
        decides, whatever any read model says)."""
        user = new.user
        async with self._pool.acquire() as connection, connection.transaction():
            inserted = await connection.fetchval(
                "INSERT INTO wallet.users (user_id, email, email_key, name_sealed, email_sealed,"
                " pin_hash, created_at, open_command_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (email_key) DO NOTHING RETURNING true",
                user.user_id, user.email, new.email_key, user.name_sealed, user.email_sealed,
                user.pin_hash, user.created_at, user.open_command_id,
            )  # fmt: skip
            if not inserted:
                return False
            await connection.execute(
                "INSERT INTO wallet.user_keys (user_id, key, created_at) VALUES ($1, $2, $3)",
                user.user_id, new.key, user.created_at,
            )  # fmt: skip
        return True

    async def by_email(self, email_key: str) -> User | None:
        row = await self._pool.fetchrow(
            f"SELECT {USER_COLUMNS} FROM wallet.users WHERE email_key = $1", email_key
        )
        return User(*row.values()) if row is not None else None

    async def by_id(self, user_id: UUID) -> User | None:
        row = await self._pool.fetchrow(
            f"SELECT {USER_COLUMNS} FROM wallet.users WHERE user_id = $1", user_id
        )
        return User(*row.values()) if row is not None else None

    async def keys(self, user_ids: list[UUID]) -> dict[UUID, bytes]:
        rows = await self._pool.fetch(
            "SELECT user_id, key FROM wallet.user_keys WHERE user_id = ANY($1::uuid[])", user_ids
        )
        return {row["user_id"]: bytes(row["key"]) for row in rows}

    async def begin_login(self, user_id: UUID, now: datetime) -> Locked | None:
        """Count an attempt before the PIN is checked; Locked when none may be made now.

        Counting first bounds parallel guessing: the sixth attempt in flight is refused before
        it is verified. Once a lock expires, one more attempt is allowed; its failure locks
        again for twice as long (up to 15 minutes).
        """
        async with self._pool.acquire() as connection, connection.transaction():
            # The row exists before it is locked: `FOR UPDATE` on a missing row locks nothing,
            # and parallel first attempts would each count themselves as the first. A second
            # insert waits for the first one's transaction, then finds the row.
            await connection.execute(
                "INSERT INTO wallet.login_attempts (user_id, attempts, last_attempt_at, locks)"
                " VALUES ($1, 0, $2, 0) ON CONFLICT (user_id) DO NOTHING",
                user_id, now,
            )  # fmt: skip
            row = await connection.fetchrow(
                "SELECT attempts, locked_until, locks FROM wallet.login_attempts"
                " WHERE user_id = $1 FOR UPDATE",
                user_id,
            )
            assert row is not None, "the row was inserted above or earlier, and is never deleted"
            attempts, locks = row["attempts"], row["locks"]
            locked_until = row["locked_until"]
            if locked_until is not None and locked_until > now:
                return Locked(locked_until)
            if locked_until is not None:
                attempts = LOGIN_ATTEMPTS_MAX - 1  # the lock expired: one more try
            attempts += 1
            if attempts > LOGIN_ATTEMPTS_MAX:
                locked_until, locks = _lock(now, locks)
            await connection.execute(
                "INSERT INTO wallet.login_attempts (user_id, attempts, last_attempt_at,"
                " locked_until, locks) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO"
                " UPDATE SET attempts = $2, last_attempt_at = $3, locked_until = $4, locks = $5",
                user_id, attempts, now,
                locked_until if attempts > LOGIN_ATTEMPTS_MAX else None, locks,
            )  # fmt: skip
            return Locked(locked_until) if attempts > LOGIN_ATTEMPTS_MAX and locked_until else None

    async def failed_login(self, user_id: UUID, now: datetime) -> Locked | None:
        """A wrong PIN: the attempt that reaches the limit locks the account."""
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "SELECT attempts, locks FROM wallet.login_attempts WHERE user_id = $1 FOR UPDATE",
                user_id,
            )
            if row is None or row["attempts"] < LOGIN_ATTEMPTS_MAX:
                return None
            until, locks = _lock(now, row["locks"])
            await connection.execute(
                "UPDATE wallet.login_attempts SET locked_until = $2, locks = $3"
                " WHERE user_id = $1",
                user_id, until, locks,
            )  # fmt: skip
            return Locked(until)

    async def succeeded_login(self, user_id: UUID) -> None:
        """Reset the count, keeping the row: an attempt in flight has just made sure it exists
        and is about to lock it (deleting it here answered that attempt with a 500)."""
        await self._pool.execute(
            "UPDATE wallet.login_attempts SET attempts = 0, locked_until = NULL, locks = 0"
            " WHERE user_id = $1",
            user_id,
        )


def _lock(now: datetime, locks: int) -> tuple[datetime, int]:
    """The next lock: 30 s, doubling with each lock since the last success, at most 15 min."""
    seconds = min(LOCK_FIRST_SECONDS * 2 ** min(locks, 10), LOCK_MAX_SECONDS)
    return now + timedelta(seconds=seconds), locks + 1
