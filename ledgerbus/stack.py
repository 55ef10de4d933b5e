"""A running Ledgerbus stack: every service process plus the gateway, over given infrastructure.

`make dev` and the end-to-end tests both start the stack through this module, so the tests
exercise the same processes, environment and start order a developer runs.
"""

import asyncio
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from ledgerbus.operations import create_all_topics, migrate_all
from ledgerbus.registry import GATEWAY_PROCESS, service_processes
from ledgerbus.registry import processes as known_processes
from shared.infra.ports import free_port
from shared.infra.process_group import ProcessGroup, ProcessSpec

GATEWAY_START_TIMEOUT_SECONDS = 60.0
STACK_STOP_TIMEOUT_SECONDS = 15.0
HEALTH_POLL_INTERVAL_SECONDS = 0.1


@dataclass(slots=True)
class Stack:
    """The processes of one stack and the environment they share."""

    environment: dict[str, str]
    group: ProcessGroup
    gateway_url: str
    ops_ports: dict[str, int] = field(default_factory=dict)

    def spec(
        self, name: str, *, restart_on_exit: bool, extra: Mapping[str, str] = {}
    ) -> ProcessSpec:
        assert name in known_processes(), name
        environment = {**self.environment, **extra}
        if name != GATEWAY_PROCESS and name not in self.ops_ports:
            self.ops_ports[name] = free_port()
        if name in self.ops_ports:
            environment["LEDGERBUS_OPS_PORT"] = str(self.ops_ports[name])
        return ProcessSpec(
            name=name,
            argv=(sys.executable, "-m", "ledgerbus", "run", name),
            environment=environment,
            restart_on_exit=restart_on_exit,
        )

    async def stop(self) -> None:
        await self.group.stop_all(STACK_STOP_TIMEOUT_SECONDS)


def all_processes() -> tuple[str, ...]:
    """Every service process in registry order, then the gateway (it waits for the others)."""
    return (*(process.name for process in service_processes()), GATEWAY_PROCESS)


async def prepare(environment: Mapping[str, str]) -> None:
    """Migrate every schema and create every topic (both idempotent)."""
    await migrate_all(environment["DATABASE_URL"])
    await create_all_topics(
        environment["KAFKA_BOOTSTRAP_SERVERS"], environment.get("LEDGERBUS_TOPIC_PREFIX", "")
    )


async def start_stack(
    environment: Mapping[str, str],
    *,
    sink: TextIO | None = None,
    restart_on_exit: bool = False,
    processes: tuple[str, ...] | None = None,
) -> Stack:
    """Start the given processes (default: every service's, then the gateway) and wait until
    the gateway answers `/health`."""
    if processes is None:
        processes = all_processes()
    environment = {**os.environ, **environment}
    environment.setdefault("LEDGERBUS_HTTP_PORT", str(free_port()))
    environment.setdefault("PYTHONUNBUFFERED", "1")
    port = environment["LEDGERBUS_HTTP_PORT"]
    stack = Stack(
        environment=environment,
        group=ProcessGroup(sink=sink),
        gateway_url=f"http://127.0.0.1:{port}",
        ops_ports={name: free_port() for name in processes if name != GATEWAY_PROCESS},
    )
    for name in processes:
        await stack.group.start(stack.spec(name, restart_on_exit=restart_on_exit))
    if GATEWAY_PROCESS in processes:
        await _healthy_or_given_up(stack)
    return stack


class GaveUpError(RuntimeError):
    """The supervisor gave up on a process before the stack came up; the message names it."""


async def _healthy_or_given_up(stack: Stack) -> None:
    """Wait for the gateway, unless the supervisor gives up on a crash-looping process first."""
    health = asyncio.ensure_future(
        wait_for_health(stack.gateway_url, GATEWAY_START_TIMEOUT_SECONDS)
    )
    give_up = asyncio.ensure_future(stack.group.wait_for_give_up())
    try:
        await asyncio.wait({health, give_up}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (health, give_up):
            if not task.done():
                task.cancel()
    if health.done() and not health.cancelled():
        health.result()
        return
    failed = give_up.result()
    raise GaveUpError(f"the supervisor gave up on {failed.name}: {failed.describe()}")


async def wait_for_health(base_url: str, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(_answers, f"{base_url}/health"):
            return
        await asyncio.sleep(HEALTH_POLL_INTERVAL_SECONDS)
    raise TimeoutError(f"{base_url}/health did not answer within {timeout_seconds:g} s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
