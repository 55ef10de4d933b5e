"""The Redis client every process opens at start (never at import), with bounded timeouts."""

from redis.asyncio import Redis

REDIS_CONNECT_TIMEOUT_SECONDS = 5.0
REDIS_COMMAND_TIMEOUT_SECONDS = 2.0
"""A cache must never make a request slower than the database it fronts."""
REDIS_MAX_CONNECTIONS = 50
REDIS_HEALTH_CHECK_INTERVAL_SECONDS = 30


def create_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
        socket_timeout=REDIS_COMMAND_TIMEOUT_SECONDS,
        max_connections=REDIS_MAX_CONNECTIONS,
        health_check_interval=REDIS_HEALTH_CHECK_INTERVAL_SECONDS,
    )
