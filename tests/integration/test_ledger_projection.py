"""The ledger read model on real PostgreSQL through the platform's projector: applying the same
events again changes nothing, and a different event reusing a sequence halts it."""

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
import pytest_asyncio

from ledgerbus.operations import migrate_all
from services.ledger.domain.catalog import build_catalogs
from services.ledger.domain.model import Account, CommandIdentity, NewDecision, decide
from services.ledger.projections.ledger_view import LEDGER_PROJECTIONS
from shared.contracts.envelope import build_envelope, encode_envelope
from shared.contracts.ledger import ENTRY_RECORDED_V1, ENTRY_REJECTED_V1, EntryRecorded, RecordEntry
from shared.engine.partition_handler import PartitionBatch
from shared.engine.projection import ProjectionInvariantError
from shared.engine.projector import Projector
from shared.infra.provision import Infrastructure
from shared.postgres.pool import create_pool
from tests.support.records import consumer_record
from tests.support.stacks import create_database

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
SHARED = {"DAILY_REWARD": 1, "SIGNUP_CREDIT": 3, "CREDIT_SPEND": -1, "CREDIT_ADD": 10}
TOPIC = "ledger.events"


@pytest_asyncio.fixture(loop_scope="session")
async def pool(infrastructure: Infrastructure) -> AsyncIterator[asyncpg.Pool]:
    dsn = await create_database(infrastructure.database_url)
    await migrate_all(dsn)
    pool = await create_pool(dsn)
    yield pool
    await pool.close()


def event_log(count: int) -> list[bytes]:
    """Events as the processor would emit them, for a few owners."""
    catalog = build_catalogs(SHARED, {"healthai": SHARED}).apps["healthai"]
    rng, values = random.Random(3), []
    accounts: dict[str, Account] = {}
    now = datetime(2026, 11, 23, tzinfo=UTC)
    for index in range(count):
        owner = rng.choice(["ann", "bo", "cy"])
        account = accounts.get(owner, Account("healthai", owner, 0, 0))
        command = RecordEntry(
            app="healthai", owner_id=owner, operation=rng.choice(list(SHARED)), nonce=f"n{index}"
        )
        decision, accounts[owner] = decide(
            command, account=account, earlier=None, catalog=catalog,
            identity=CommandIdentity("tests", f"c{index}"), now=now + timedelta(seconds=index),
        )  # fmt: skip
        assert isinstance(decision, NewDecision)
        kind = ENTRY_RECORDED_V1 if isinstance(decision.event, EntryRecorded) else ENTRY_REJECTED_V1
        envelope = build_envelope(
            message_type=kind, source="tests", subject=f"healthai:{owner}", data=decision.event
        )
        values.append(encode_envelope(envelope))
    return values


async def apply(pool: asyncpg.Pool, values: list[bytes], offsets: list[int]) -> list[str]:
    projector = Projector(LEDGER_PROJECTIONS)
    records = [consumer_record(TOPIC, 0, o, b"k", v) for o, v in zip(offsets, values, strict=True)]
    batch = PartitionBatch(TOPIC, 0, records, partition_count=1)
    async with pool.acquire() as connection, connection.transaction():
        result = await projector.handle(connection, batch)
    return [(dict(letter.headers)["error_code"] or b"").decode() for letter in result.dead_letters]


async def snapshot(pool: asyncpg.Pool) -> tuple[list[asyncpg.Record], ...]:
    balances = await pool.fetch("SELECT * FROM ledger.balances ORDER BY app, owner_id")
    entries = await pool.fetch("SELECT * FROM ledger.entries ORDER BY id")
    applied = await pool.fetch("SELECT * FROM ledger.applied_events ORDER BY stream, sequence")
    return balances, entries, applied


async def test_a_replay_of_the_same_events_changes_nothing(pool: asyncpg.Pool) -> None:
    values = event_log(60)
    assert await apply(pool, values, list(range(60))) == []
    first = await snapshot(pool)
    assert len(first[0]) == 3
    assert len(first[1]) > 0
    assert len(first[2]) == 60
    assert await apply(pool, values, list(range(60))) == []
    assert await snapshot(pool) == first
    repeated = values[10:20] + values[:5]
    assert await apply(pool, repeated, list(range(60, 75))) == []
    assert await snapshot(pool) == first


async def test_another_event_reusing_a_sequence_halts_and_writes_nothing(
    pool: asyncpg.Pool,
) -> None:
    values = event_log(10)
    assert await apply(pool, values, list(range(10))) == []
    before = await snapshot(pool)
    forged = orjson.loads(values[0])
    forged["id"] = "forged-event-id"  # a different event claiming an applied stream position
    with pytest.raises(ProjectionInvariantError, match="reuses sequence"):
        await apply(pool, [orjson.dumps(forged)], [200])
    assert await snapshot(pool) == before


async def test_an_invalid_event_is_dead_lettered_and_not_applied(pool: asyncpg.Pool) -> None:
    before = await snapshot(pool)
    assert await apply(pool, [b"{broken", b'{"specversion": "1.0"}'], [100, 101]) == [
        "invalid_json",
        "not_a_cloudevent",
    ]
    assert await snapshot(pool) == before
