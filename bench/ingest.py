"""Ingest: commands from the producer to committed read-model rows, and the lag on the way."""

import asyncio
import statistics
import time
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from bench import workloads

SATURATION_COMMANDS = 50_000
LAG_PHASE_SECONDS = 8.0
LAG_RATE_SHARE = 0.5
"""The lag is measured at half the saturated rate: a load the system sustains."""
POLL_INTERVAL_SECONDS = 0.01
TICK_SECONDS = 0.01
SETTLE_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class IngestResult:
    commands_per_second: float
    commands: int
    lag_p50_milliseconds: float
    lag_p99_milliseconds: float
    lag_rate: float


async def entry_count(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM ledger.entries"))


async def wait_for_count(connection: asyncpg.Connection, wanted: int) -> float:
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while await entry_count(connection) < wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the read model did not reach {wanted} entries")
        await asyncio.sleep(POLL_INTERVAL_SECONDS)
    return time.perf_counter()


async def saturate(producer: AIOKafkaProducer, connection: asyncpg.Connection, topic: str) -> float:
    records = workloads.commands(SATURATION_COMMANDS, "ingest")
    base = await entry_count(connection)
    started = time.perf_counter()
    futures = [await producer.send(topic, key=key, value=value) for key, value in records]
    await asyncio.gather(*futures)
    finished = await wait_for_count(connection, base + len(records))
    return len(records) / (finished - started)


async def measure_lag(
    producer: AIOKafkaProducer, connection: asyncpg.Connection, topic: str, rate: float
) -> list[float]:
    """Send at a steady rate; the i-th command is visible when the entry count passes it."""
    total = int(rate * LAG_PHASE_SECONDS)
    records = workloads.commands(total, "lag")
    base = await entry_count(connection)
    sent_at: list[float] = []
    per_tick = max(1, int(rate * TICK_SECONDS))

    async def send() -> None:
        started = time.perf_counter()
        for index in range(0, total, per_tick):
            for key, value in records[index : index + per_tick]:
                await producer.send(topic, key=key, value=value)
                sent_at.append(time.perf_counter())
            pause = started + (index + per_tick) / rate - time.perf_counter()
            await asyncio.sleep(max(0.0, pause))

    sender = asyncio.create_task(send())
    seen_at: list[float] = []
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while len(seen_at) < total and time.monotonic() < deadline:
        visible = await entry_count(connection) - base
        now = time.perf_counter()
        seen_at.extend([now] * (min(visible, total) - len(seen_at)))
        await asyncio.sleep(POLL_INTERVAL_SECONDS)
    await sender
    return [(seen - sent) * 1000 for sent, seen in zip(sent_at, seen_at, strict=False)]


async def run(bootstrap: str, dsn: str, topic: str) -> IngestResult:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    connection = await asyncpg.connect(dsn)
    try:
        rate = await saturate(producer, connection, topic)
        lags = await measure_lag(producer, connection, topic, rate * LAG_RATE_SHARE)
    finally:
        await connection.close()
        await producer.stop()
    quantiles = statistics.quantiles(lags, n=100)
    return IngestResult(
        rate, SATURATION_COMMANDS, quantiles[49], quantiles[98], rate * LAG_RATE_SHARE
    )
