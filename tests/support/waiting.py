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


CONDITION_TIMEOUT_SECONDS = 15.0
CONDITION_POLL_INTERVAL_SECONDS = 0.02


def wait_until(condition: Callable[[], bool], description: str) -> None:
    """Poll a synchronous ``condition`` until it holds, failing the test after a deadline."""
    deadline = time.monotonic() + CONDITION_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting until {description}.")
        time.sleep(CONDITION_POLL_INTERVAL_SECONDS)


async def wait_until_async(condition: Callable[[], bool], description: str) -> None:
    """Poll ``condition`` without blocking the event loop, failing after a deadline."""
    deadline = time.monotonic() + CONDITION_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting until {description}.")
        await asyncio.sleep(CONDITION_POLL_INTERVAL_SECONDS)
