"""Replay: `ledgerbus projections rebuild ledger` over at least 200,000 events."""

import asyncio
import time

import asyncpg
from aiokafka import AIOKafkaProducer

from bench import workloads
from services.ledger.projections.ledger_view import LEDGER_PROJECTIONS
from shared.engine.rebuild import RebuildResult
from shared.engine.rebuild import rebuild as rebuild_projections

REPLAY_EVENTS = 200_000
SETTLE_TIMEOUT_SECONDS = 600.0
POLL_INTERVAL_SECONDS = 0.2


async def add_events(bootstrap: str, dsn: str, topic: str) -> int:
    """Append synthetic events and wait until the live projector has applied them."""
    records = workloads.events(REPLAY_EVENTS, "replay")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while True:
            count = int(
                await connection.fetchval(
                    "SELECT count(*) FROM ledger.entries WHERE owner_id LIKE 'replay-%'"
                )
            )
            if count >= REPLAY_EVENTS:
                return int(await connection.fetchval("SELECT count(*) FROM ledger.entries"))
            if time.monotonic() > deadline:
                raise TimeoutError("the live projector did not apply the replay events")
            await asyncio.sleep(POLL_INTERVAL_SECONDS)
    finally:
        await connection.close()


async def rebuild(bootstrap: str, dsn: str, prefix: str) -> RebuildResult:
    return await rebuild_projections(dsn, bootstrap, LEDGER_PROJECTIONS, topic_prefix=prefix)
