"""Analytics: summary reads through the gateway, and aggregate updates by the aggregator's code.

Summary reads: one user with a year of recorded transactions (a bucket a day), read with wrk
on a warm Redis; the ceiling is a bare Starlette endpoint served the same way that makes the
same Redis call (the script adding up the user's buckets) and answers a body of the same shape.
The p99 at half load paces wrk (think time per connection) to half the rate the gateway
reached.

Aggregate updates: `ledgerbus analytics rebuild` over every event the other benchmarks wrote
(wallet opens and transfers, ledger entries), timed from offset 0 to the switch; the ceiling
is raw pipelined Redis writes of the same keys (each event's stream sequence and increments,
1,000 commands a round trip, no script, no checks, nothing read from Kafka).
"""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from bench import gateway
from services.analytics.adapters.log_events import aggregate_event
from services.analytics.adapters.redis_aggregates import AggregateEvent, encode
from services.analytics.bootstrap import registries
from services.analytics.projections.rebuild import run_rebuild
from services.analytics.settings import key_prefix
from shared.contracts.registry import ParsedMessage
from shared.settings import PlatformSettings

SUMMARY_DAYS = 365
RECORD_CONCURRENCY = 8
PACED_CONNECTIONS = 8
PACE_SCRIPT = Path(__file__).with_name("paced.lua")
RAW_PIPELINE_COMMANDS = 1_000
READ_BATCH_RECORDS = 20_000
READ_IDLE_FETCHES_MAX = 5


@dataclass(frozen=True, slots=True)
class SummaryFigures:
    real: gateway.Load
    bare: gateway.Load
    paced: gateway.Load
    paced_rate: float


async def summary_user(gateway_url: str) -> tuple[str, str]:
    """A user with one recorded transaction a day for a year; their id and token."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        created = await client.post(
            "/auth/register", json={"name": "Bench", "email": email, "pin": "12345"}
        )
        created.raise_for_status()
        token = (
            await client.post("/auth/token", data={"username": email, "password": "12345"})
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        gate = asyncio.Semaphore(RECORD_CONCURRENCY)

        async def record(day: int) -> str:
            async with gate:
                answer = await client.post("/transactions", headers=auth, json={
                    "transaction_amount": 100 + day, "transaction_type": "credit",
                    "transaction_date": (date(2025, 1, 1) + timedelta(days=day)).isoformat(),
                })  # fmt: skip
                answer.raise_for_status()
                return str(answer.json()["position"])

        positions = await asyncio.gather(*(record(day) for day in range(SUMMARY_DAYS)))
        user_id = created.json()["id"]
        caught = await client.get(
            f"/analytics/users/{user_id}/summary", headers=auth,
            params={"min_position": max(positions, key=lambda p: int(p.split(":")[1]))},
        )  # fmt: skip
        caught.raise_for_status()
        return str(user_id), str(token)


async def summary_reads(gateway_url: str, environment: dict[str, str]) -> SummaryFigures:
    user_id, token = await summary_user(gateway_url)
    path = f"/analytics/users/{user_id}/summary"
    headers = {"Authorization": f"Bearer {token}"}
    redis = Redis.from_url(environment["REDIS_URL"])
    prefix = f"ledgerbus:analytics:{environment['LEDGERBUS_TOPIC_PREFIX']}:"
    assert await redis.get(f"{prefix}generation") is not None, "the aggregates are live"
    await redis.aclose()
    bare_process, bare_url = await gateway.bare_endpoint(
        {"BENCH_REDIS_URL": environment["REDIS_URL"], "BENCH_ANALYTICS_PREFIX": prefix}
    )
    try:
        bare = await gateway.measure(f"{bare_url}{path}", {})
    finally:
        bare_process.terminate()
        await bare_process.wait()
    real = await gateway.measure(f"{gateway_url}{path}", headers)
    paced_rate = real.requests_per_second / 2
    think_milliseconds = PACED_CONNECTIONS * 1000 / paced_rate
    paced = await gateway.wrk(
        f"{gateway_url}{path}", headers, gateway.WRK_SECONDS, connections=PACED_CONNECTIONS,
        script=PACE_SCRIPT, environment={"BENCH_THINK_MILLISECONDS": f"{think_milliseconds:.2f}"},
    )  # fmt: skip
    return SummaryFigures(real, bare, paced, paced_rate)


def _settings(environment: dict[str, str]) -> PlatformSettings:
    return PlatformSettings(
        kafka_bootstrap_servers=environment["KAFKA_BOOTSTRAP_SERVERS"],
        redis_url=environment["REDIS_URL"], database_url=environment["DATABASE_URL"],
        ledgerbus_topic_prefix=environment["LEDGERBUS_TOPIC_PREFIX"],
    )  # fmt: skip


async def aggregate_rebuild(environment: dict[str, str]) -> tuple[float, int, float]:
    """Events applied per second by a rebuild from offset 0, how many, and the seconds."""
    settings = _settings(environment)
    result = await run_rebuild(settings, lambda _: None, lambda _: None)
    return result.events_applied / result.seconds, result.events_applied, result.seconds


async def _events(settings: PlatformSettings) -> list[AggregateEvent]:
    """Every aggregate event of the consumed topics, decoded (outside the ceiling's timing)."""
    found: list[AggregateEvent] = []
    for topic, registry in registries(settings).items():
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )  # fmt: skip
        await consumer.start()
        try:
            idle = 0
            while idle < READ_IDLE_FETCHES_MAX:
                batches = await consumer.getmany(timeout_ms=500, max_records=READ_BATCH_RECORDS)
                idle = 0 if batches else idle + 1
                for records in batches.values():
                    for record in records:
                        parsed = registry.parse(record.value)
                        if isinstance(parsed, ParsedMessage):
                            event = aggregate_event(parsed.data, parsed.envelope.id)
                            if event is not None:
                                found.append(event)
        finally:
            await consumer.stop()
    return found


def _contribution_commands(pipeline: Any, base: str, event: AggregateEvent) -> None:
    """A transaction's day and month increments and its month in the index, as plain
    commands (the script also finds the month's busiest day again; this does not)."""
    contribution = event.contribution
    assert contribution is not None
    user, day = str(contribution.user_id), contribution.day.isoformat()
    for period in (day, day[:7]):
        pipeline.hincrby(f"{base}user:{user}", f"{period}:count", 1)
        pipeline.hincrby(
            f"{base}user:{user}", f"{period}:{contribution.direction}", contribution.amount
        )
    pipeline.zadd(f"{base}months:{user}", {day[:7]: int(day[:7].replace("-", ""))})
    if event.kind == "record":
        pipeline.hset(f"{base}records", event.key, encode(contribution))


async def raw_pipelined_rate(environment: dict[str, str]) -> tuple[float, int]:
    """The same keys written by plain pipelined commands: events per second, and events."""
    settings = _settings(environment)
    events = await _events(settings)
    redis = Redis.from_url(settings.redis_url)
    base = f"{key_prefix(settings)}raw-ceiling:"
    try:
        started = time.perf_counter()
        pipeline = redis.pipeline(transaction=False)
        for event in events:
            pipeline.hset(f"{base}streams", event.stream, event.sequence)
            for suffix, name, amount in event.counters:
                pipeline.hincrby(f"{base}{suffix}", name, amount)
            if event.contribution is not None:
                _contribution_commands(pipeline, base, event)
            if len(pipeline) >= RAW_PIPELINE_COMMANDS:
                await pipeline.execute()
        await pipeline.execute()
        seconds = time.perf_counter() - started
        keys = [key async for key in redis.scan_iter(match=f"{base}*")]
        if keys:
            await redis.unlink(*keys)
    finally:
        await redis.aclose()
    return len(events) / seconds, len(events)
