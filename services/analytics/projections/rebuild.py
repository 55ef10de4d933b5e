"""`ledgerbus analytics rebuild` (and `ledgerbus projections rebuild analytics`): the aggregates
rebuilt from offset 0 of every consumed topic into a new generation, beside the live one, which
keeps answering until the new one has caught up with the log and replaces it in one step.

The running aggregator keeps writing the live generation meanwhile; once the new one is live,
its next batch is refused as `stale_generation` and it goes on in the new generation from the
checkpoints this rebuild reached (ADR 0017). Redis holding no live generation (it lost its
data) is rebuilt the same way; the aggregator does that by itself too.
"""

import time
from collections.abc import Callable

from services.analytics.adapters.consumer import AggregateConsumer
from services.analytics.adapters.redis_aggregates import RedisAggregates
from services.analytics.bootstrap import aggregate_store, registries
from shared.engine.rebuild import RebuildResult
from shared.kafka.log_end import LogEndProbe
from shared.redis_client import create_redis
from shared.settings import PlatformSettings

REBUILD_TIMEOUT_SECONDS = 3_600.0
"""A rebuild that has not caught up within an hour stops (the live generation is untouched)."""


class RebuildAbandonedError(RuntimeError):
    """Another rebuild replaced this one, or it ran out of time; the live generation stands."""


async def _log_total(settings: PlatformSettings) -> int:
    probe = LogEndProbe(settings.kafka_bootstrap_servers, client_id="analytics-rebuild-total")
    await probe.start()
    try:
        total = 0
        for topic in registries(settings):
            total += sum((await probe.end_offsets(await probe.partitions(topic))).values())
        return total
    finally:
        await probe.stop()


async def run_rebuild(
    settings: PlatformSettings, on_total: Callable[[int], None], on_progress: Callable[[int], None]
) -> RebuildResult:
    started = time.monotonic()
    on_total(await _log_total(settings))
    redis = create_redis(settings.redis_url)
    try:
        store = aggregate_store(settings, redis)
        generation = await store.begin_rebuild()
        consumer = AggregateConsumer(
            bootstrap=settings.kafka_bootstrap_servers, group_id=None,
            registries=registries(settings), store=store,
            session_timeout_milliseconds=settings.session_timeout_milliseconds,
        )  # fmt: skip
        try:
            await consumer.start(generation)
            await _until_live(consumer, store, generation, on_progress)
        except BaseException:
            await store.abandon_rebuild(generation)  # its keys go; the live ones stand
            raise
        finally:
            await consumer.stop()
        return RebuildResult(
            events_applied=consumer.applied_total, rows={"generation " + generation: 1},
            positions={}, seconds=time.monotonic() - started,
        )  # fmt: skip
    finally:
        await redis.aclose()


async def _until_live(
    consumer: AggregateConsumer, store: RedisAggregates, generation: str,
    on_progress: Callable[[int], None],
) -> None:  # fmt: skip
    deadline = time.monotonic() + REBUILD_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        applied = await consumer.run_once()
        on_progress(applied)
        if consumer.generation != generation:
            raise RebuildAbandonedError("Redis no longer builds this generation")
        if await consumer.finish_rebuild_if_caught_up():
            return
        if await store.generation() == generation:
            return  # an aggregator writing the same generation switched it first
        if await store.building() != generation:
            raise RebuildAbandonedError("another rebuild replaced this one")
    raise RebuildAbandonedError(f"not caught up within {REBUILD_TIMEOUT_SECONDS:g} s")
