"""The Redis client every process opens at start (never at import), with bounded timeouts.

The pool blocks: a request that finds every connection busy waits (up to
REDIS_POOL_WAIT_SECONDS) for one to come back, rather than failing. A non-blocking pool answers
"too many connections" under a burst, which reads as Redis being down (a false 503, found by a
black-box probe at 60 concurrent reads).
"""

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

REDIS_CONNECT_TIMEOUT_SECONDS = 5.0
REDIS_COMMAND_TIMEOUT_SECONDS = 2.0
"""A cache must never make a request slower than the database it fronts."""
REDIS_MAX_CONNECTIONS = 50
REDIS_POOL_WAIT_SECONDS = 2.0
"""How long a command waits for a free connection before it fails as Redis being busy."""
REDIS_HEALTH_CHECK_INTERVAL_SECONDS = 30
REDIS_COMMAND_RETRIES = 2
"""A command that met a dropped connection is sent again on a fresh one: after a Redis restart
every pooled connection is dead, and each would otherwise fail one request (a probe saw 503s
for 20 s). Every script here is safe to repeat: batches carry their expected checkpoint."""
REDIS_RETRY_BACKOFF_CAP_SECONDS = 0.2
REDIS_RETRY_BACKOFF_BASE_SECONDS = 0.02


def create_redis(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_WAIT_SECONDS,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
        socket_timeout=REDIS_COMMAND_TIMEOUT_SECONDS,
        health_check_interval=REDIS_HEALTH_CHECK_INTERVAL_SECONDS,
        # Only a dropped connection is retried: a timeout already took its 2 s.
        retry=Retry(
            ExponentialBackoff(REDIS_RETRY_BACKOFF_CAP_SECONDS, REDIS_RETRY_BACKOFF_BASE_SECONDS),
            REDIS_COMMAND_RETRIES,
            supported_errors=(RedisConnectionError,),
        ),
        retry_on_error=[RedisConnectionError],
    )
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes both
