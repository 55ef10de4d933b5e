"""Analytics settings: names, topics, where its keys live in Redis, and its limits."""

from shared.settings import PlatformSettings

SERVICE_NAME = "analytics"
AGGREGATOR_NAME = "analytics-aggregator"
"""The process, its consumer group and its container."""
WALLET_EVENTS_TOPIC = "wallet.events"
LEDGER_EVENTS_TOPIC = "ledger.events"
TRACKING_EVENTS_TOPIC = "tracking.events"
CONSUMED_TOPICS = (WALLET_EVENTS_TOPIC, LEDGER_EVENTS_TOPIC, TRACKING_EVENTS_TOPIC)
KEY_PREFIX_ROOT = "ledgerbus:analytics:"


def key_prefix(settings: PlatformSettings) -> str:
    """Every analytics key starts with this. The topic prefix is part of it: deployments (and
    test runs) sharing one Redis keep their aggregates apart as they keep their topics apart."""
    return f"{KEY_PREFIX_ROOT}{settings.ledgerbus_topic_prefix}:"
