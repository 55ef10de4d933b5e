"""Waiting on conditions with deadlines: tests never sleep blindly."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
POLL_INTERVAL_SECONDS = 0.05
DEFAULT_TIMEOUT_SECONDS = 30.0


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    description: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> T:
    """Call `probe` until `accept` holds for its result; fail with the last result otherwise."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_seconds:g} s waiting for {description}; last: {value!r}"
            )
        await asyncio.sleep(POLL_INTERVAL_SECONDS)
