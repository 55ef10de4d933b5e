"""The wallet's identity store on real PostgreSQL: parallel login attempts are each counted.

Found by review: counting with `SELECT … FOR UPDATE` locks nothing while the account has no
attempts row (never failed, or just logged in), so parallel first attempts all counted as the
first and every one was checked. The row now exists before it is locked.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio

from ledgerbus.operations import migrate_all
from services.wallet.adapters.identity_store import LOGIN_ATTEMPTS_MAX, IdentityStore
from shared.infra.provision import Infrastructure
from shared.postgres.pool import create_pool
from tests.support.stacks import create_database

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
PARALLEL_ATTEMPTS = 20


@pytest_asyncio.fixture(loop_scope="session")
async def pool(infrastructure: Infrastructure) -> AsyncIterator[asyncpg.Pool]:
    dsn = await create_database(infrastructure.database_url)
    await migrate_all(dsn)
    pool = await create_pool(dsn, max_size=PARALLEL_ATTEMPTS)
    yield pool
    await pool.close()


async def test_parallel_first_attempts_are_each_counted(pool: asyncpg.Pool) -> None:
    store, user, now = IdentityStore(pool), uuid.uuid4(), datetime.now(UTC)
    for _round in range(2):  # the second round starts after a success reset the count
        answers = await asyncio.gather(
            *(store.begin_login(user, now) for _ in range(PARALLEL_ATTEMPTS))
        )
        allowed = [answer for answer in answers if answer is None]
        assert len(allowed) == LOGIN_ATTEMPTS_MAX, answers
        await store.succeeded_login(user)


async def test_logins_racing_a_success_are_answered(pool: asyncpg.Pool) -> None:
    """Found by `make bench`: a success deleted the row between an attempt's insert and its
    lock, and that attempt failed an assertion (a 500). A success now resets the count."""
    store, user, now = IdentityStore(pool), uuid.uuid4(), datetime.now(UTC)

    async def attempt_then_succeed() -> None:
        if await store.begin_login(user, now) is None:
            await store.succeeded_login(user)

    for _round in range(20):
        await asyncio.gather(*(attempt_then_succeed() for _ in range(PARALLEL_ATTEMPTS)))
