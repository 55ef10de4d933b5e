"""Waiting, in the gateway, until a read model has applied a given position (`min_position`).

Replies to commands are waited for in `shared.http.commands`.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from shared.kafka.positions import reached
from shared.postgres.notify import NotificationHub

CHECKPOINT_POLL_INTERVAL_SECONDS = 0.25
READ_WAIT_TIMEOUT_SECONDS = 5.0
"""The contract: a read with `min_position` waits at most this long, then answers 504."""
RESET_PAYLOAD = "reset"
"""Sent on a positions channel when a read model was replaced wholesale (a rebuild)."""


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
