"""Waiting, in the gateway, for what the log-driven processes have done.

`OutcomeWaiter` waits for the answer to one command: the partition owner sends it with NOTIFY
when its transaction commits; a poll of the stored answer covers a missed notification.
`CheckpointWatcher` waits until a read model has applied a given position (`min_position`).
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import orjson

from shared.kafka.positions import reached
from shared.postgres.notify import NotificationHub

OUTCOME_POLL_INTERVAL_SECONDS = 0.5
"""How often a waiting request re-reads its stored answer in case a NOTIFY was missed."""
CHECKPOINT_POLL_INTERVAL_SECONDS = 0.25
READ_WAIT_TIMEOUT_SECONDS = 5.0
RESET_PAYLOAD = "reset"
"""Sent on a positions channel when a read model was replaced wholesale (a rebuild)."""
"""The contract: a read with `min_position` waits at most this long, then answers 504."""

Outcome = dict[str, Any]
OutcomeReader = Callable[[str], Awaitable[Outcome | None]]


class OutcomeWaiter:
    def __init__(self, hub: NotificationHub, channel: str, read_stored: OutcomeReader) -> None:
        self._read_stored = read_stored
        self._waiting: dict[str, asyncio.Future[Outcome]] = {}
        hub.subscribe(channel, self._on_payload)

    def _on_payload(self, payload: str) -> None:
        outcome = orjson.loads(payload)
        future = self._waiting.get(outcome.get("command_id", ""))
        if future is not None and not future.done():
            future.set_result(outcome)

    @contextlib.contextmanager
    def expect(self, command_id: str) -> Iterator[Callable[[float], Awaitable[Outcome | None]]]:
        """Register interest before publishing, so an answer can never arrive unheard."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        try:
            yield lambda timeout: self._wait(command_id, future, timeout)
        finally:
            self._waiting.pop(command_id, None)

    async def _wait(
        self, command_id: str, future: asyncio.Future[Outcome], timeout_seconds: float
    ) -> Outcome | None:
        deadline = time.monotonic() + timeout_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return await self._read_stored(command_id)
            try:
                return await asyncio.wait_for(
                    asyncio.shield(future), min(remaining, OUTCOME_POLL_INTERVAL_SECONDS)
                )
            except TimeoutError:
                stored = await self._read_stored(command_id)
                if stored is not None:
                    return stored


class CheckpointWatcher:
    """Tracks one projection's checkpoints from NOTIFY payloads `partition:next_offset`."""

    def __init__(
        self,
        hub: NotificationHub,
        channel: str,
        read_checkpoints: Callable[[], Awaitable[Mapping[int, int]]],
    ) -> None:
        self._read_checkpoints = read_checkpoints
        self._known: dict[int, int] = {}
        self._changed = asyncio.Event()
        self._hub = hub
        self._resets = 0
        hub.subscribe(channel, self._on_payload, on_reconnect=self._changed.set)

    @property
    def known(self) -> Mapping[int, int]:
        """The newest checkpoint heard of per partition (NOTIFY, or a read of the table)."""
        return self._known

    @property
    def listening(self) -> tuple[int, int] | None:
        """What answers read now are valid under: the LISTEN connection's generation and the
        number of read-model replacements heard of; None while the connection is down."""
        if not self._hub.connected.is_set():
            return None
        return self._hub.generation, self._resets

    def merge(self, checkpoints: Mapping[int, int]) -> None:
        self._merge(checkpoints)

    def _on_payload(self, payload: str) -> None:
        if payload == RESET_PAYLOAD:
            self._resets += 1
            self._changed.set()
            return
        partition, _, next_offset = payload.partition(":")
        self._merge({int(partition): int(next_offset)})

    def _merge(self, checkpoints: Mapping[int, int]) -> None:
        for partition, next_offset in checkpoints.items():
            if next_offset > self._known.get(partition, 0):
                self._known[partition] = next_offset
        self._changed.set()

    async def wait_for(self, wanted: Mapping[int, int], timeout_seconds: float) -> bool:
        """True once every wanted partition is applied past its offset; False at the deadline."""
        if reached(self._known, wanted):
            return True
        self._merge(await self._read_checkpoints())
        deadline = time.monotonic() + timeout_seconds
        while not reached(self._known, wanted):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(
                    self._changed.wait(), min(remaining, CHECKPOINT_POLL_INTERVAL_SECONDS)
                )
            except TimeoutError:
                self._merge(await self._read_checkpoints())
        return True
