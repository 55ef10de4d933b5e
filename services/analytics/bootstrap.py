"""Wiring for the analytics aggregator. Nothing connects until `build_aggregator` is awaited."""

from dataclasses import dataclass

from redis.asyncio import Redis

from services.analytics.adapters.consumer import AggregateConsumer
from services.analytics.adapters.progress import aggregates_progress
from services.analytics.adapters.redis_aggregates import RedisAggregates
from services.analytics.settings import (
    AGGREGATOR_NAME,
    CONSUMED_TOPICS,
    key_prefix,
)
from shared.contracts.ledger import LEDGER_EVENTS
from shared.contracts.registry import MessageRegistry
from shared.contracts.tracking import TRACKING_EVENTS
from shared.contracts.wallet import WALLET_EVENTS
from shared.kafka.lag import LagReader
from shared.observability.consumers import ProgressMemory
from shared.observability.health import Readiness
from shared.redis_client import create_redis
from shared.settings import PlatformSettings

REGISTRIES: dict[str, MessageRegistry] = {
    "wallet.events": WALLET_EVENTS, "ledger.events": LEDGER_EVENTS,
    "tracking.events": TRACKING_EVENTS,
}  # fmt: skip
assert set(REGISTRIES) == set(CONSUMED_TOPICS), "every consumed topic has its registry"


def registries(settings: PlatformSettings) -> dict[str, MessageRegistry]:
    """Each consumed topic as the broker names it, with the registry that reads it."""
    return {settings.topic(name): registry for name, registry in REGISTRIES.items()}


def aggregate_store(settings: PlatformSettings, redis: Redis) -> RedisAggregates:
    """The aggregates, under keys that carry the topics' names as the broker knows them."""
    return RedisAggregates(redis, key_prefix(settings))


@dataclass(slots=True)
class Aggregator:
    consumer: AggregateConsumer
    redis: Redis
    lag: LagReader
    readiness: Readiness


def build_aggregator(settings: PlatformSettings) -> Aggregator:
    redis = create_redis(settings.redis_url)
    consumer = AggregateConsumer(
        bootstrap=settings.kafka_bootstrap_servers, group_id=AGGREGATOR_NAME,
        registries=registries(settings), store=aggregate_store(settings, redis),
        session_timeout_milliseconds=settings.session_timeout_milliseconds,
    )  # fmt: skip
    lag = LagReader(settings.kafka_bootstrap_servers, client_id=f"{AGGREGATOR_NAME}-lag")
    memory = ProgressMemory()
    topics = [settings.topic(name) for name in CONSUMED_TOPICS]

    async def redis_check() -> None:
        await redis.ping()

    async def aggregates_check() -> dict[str, object]:
        return await aggregates_progress(redis, key_prefix(settings), lag, topics, memory)

    readiness = Readiness({"redis": redis_check, "aggregates": aggregates_check}, AGGREGATOR_NAME)
    return Aggregator(consumer, redis, lag, readiness)
