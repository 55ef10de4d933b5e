"""One LISTEN connection per process, shared by every waiter in it.

PostgreSQL delivers a NOTIFY sent inside a transaction only when that transaction commits,
which is exactly when a decision becomes durable. If the connection drops, notifications are
lost while it is down, so every subscriber also has an `on_reconnect` hook to re-read state.
"""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg

from shared.logs import get_logger
from shared.postgres.pool import connect

RECONNECT_BACKOFF_MAX_SECONDS = 5.0
CONNECTION_CHECK_INTERVAL_SECONDS = 1.0
PING_TIMEOUT_SECONDS = 2.0

logger = get_logger(__name__)
PayloadCallback = Callable[[str], None]


class NotificationHub:
    def __init__(self, dsn: str, *, application_name: str) -> None:
        self._dsn = dsn
        self._application_name = application_name
        self._callbacks: dict[str, list[PayloadCallback]] = {}
        self._reconnect_hooks: list[Callable[[], None]] = []
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.generation = 0
        """Rises on every (re)connect: what was learnt before a drop may have missed news."""

    def subscribe(
        self,
        channel: str,
        callback: PayloadCallback,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        """Register before `start`; callbacks run on the event loop and must not block."""
        assert self._task is None, "subscribe before start"
        self._callbacks.setdefault(channel, []).append(callback)
        if on_reconnect is not None:
            self._reconnect_hooks.append(on_reconnect)

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._keep_connected(), name="notification-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close(timeout=2)
            self._connection = None

    async def _connect(self) -> None:
        connection = await connect(self._dsn, application_name=self._application_name)
        try:
            for channel in self._callbacks:
                await connection.add_listener(channel, self._dispatch)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        self.generation += 1
        self.connected.set()

    def _dispatch(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        for callback in self._callbacks.get(channel, ()):
            try:
                callback(payload)
            except Exception as error:
                logger.error("notification callback failed", channel=channel, error=repr(error))

    async def _alive(self) -> bool:
        """A ping, because a silently dropped TCP connection still looks open."""
        connection = self._connection
        if connection is None or connection.is_closed():
            return False
        try:
            await connection.fetchval("SELECT 1", timeout=PING_TIMEOUT_SECONDS)
        except Exception:
            return False
        return True

    async def _keep_connected(self) -> None:
        delay = CONNECTION_CHECK_INTERVAL_SECONDS
        while True:
            await asyncio.sleep(delay)
            if await self._alive():
                delay = CONNECTION_CHECK_INTERVAL_SECONDS
                continue
            self.connected.clear()
            await self._discard_connection()
            try:
                await self._connect()
            except Exception as error:
                delay = min(RECONNECT_BACKOFF_MAX_SECONDS, delay * 2)
                logger.warning("LISTEN connection down; retrying", error=repr(error))
                continue
            logger.info("LISTEN connection restored")
            for hook in self._reconnect_hooks:
                hook()

    async def _discard_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.terminate()
