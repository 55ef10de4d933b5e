"""`make dev` under faults: a dead embedded server or a crash-looping service process.

Each test runs the real `python -m ledgerbus dev` on free ports in its own directory, kills
one of its processes by PID with SIGKILL, and checks what the console says, whether the stack
serves again or stops as a whole, the exit code, and that no process is left behind.
"""

import asyncio
import collections
import contextlib
import itertools
import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from shared.infra.process_group import MAXIMUM_RESTARTS_PER_MINUTE
from tests.support.dev_runs import STOP_TIMEOUT_SECONDS, running_dev
from tests.support.waiting import eventually

TEST_TIMEOUT_SECONDS = 85
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(TEST_TIMEOUT_SECONDS),
]
NOTICE_TIMEOUT_SECONDS = 3.0
RECOVERY_TIMEOUT_SECONDS = 30.0
EXIT_TIMEOUT_SECONDS = 30.0
GATEWAY_RESPAWN_TIMEOUT_SECONDS = 20.0
HTTP_TIMEOUT_SECONDS = 15.0
HEALTHAI_KEY = "dev-healthai-key"
LOAD_WRITERS = 4


async def write_status(client: httpx.AsyncClient, nonce: str) -> int:
    """POST one ledger write through the gateway; 0 when no HTTP answer came."""
    try:
        response = await client.post(
            "/ledger/",
            headers={"X-Api-Key": HEALTHAI_KEY},
            json={"owner_id": "fault-user", "operation": "CREDIT_ADD", "nonce": nonce},
        )
    except httpx.HTTPError:
        return 0
    return response.status_code


async def write_continuously(
    client: httpx.AsyncClient, writer: int, stop: asyncio.Event, statuses: list[int]
) -> None:
    """Keep one write in flight at a time until ``stop`` is set; record every status."""
    for number in itertools.count():
        if stop.is_set():
            return
        statuses.append(await write_status(client, f"load-{writer}-{number}"))


def is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def still_alive(processes: list[psutil.Process]) -> list[list[str]]:
    """Return the command lines of the processes that still run (zombies do not count)."""
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process.cmdline())
    return alive


async def test_dev_restarts_a_killed_embedded_postgres_in_place(tmp_path: Path) -> None:
    async with running_dev(tmp_path) as dev:
        gateway_url = await dev.wait_until_serving()
        postgres_pid = dev.embedded_pid("postgres")
        async with httpx.AsyncClient(base_url=gateway_url, timeout=HTTP_TIMEOUT_SECONDS) as client:
            assert await write_status(client, "before-kill") == 201, dev.tail
            # Writes keep coming while PostgreSQL dies, as they would in real use.
            stop_load = asyncio.Event()
            statuses: list[int] = []
            load = [
                asyncio.create_task(write_continuously(client, writer, stop_load, statuses))
                for writer in range(LOAD_WRITERS)
            ]

            async def created_count() -> int:
                return statuses.count(201)

            await eventually(created_count, lambda count: count >= LOAD_WRITERS, "load flowing")

            killed_at = time.monotonic()
            os.kill(postgres_pid, signal.SIGKILL)
            died = (
                rf"embedded postgres \(pid {postgres_pid}\) died: exit code -9 \(ended by SIGKILL\)"
            )
            await dev.wait_for_line(died, NOTICE_TIMEOUT_SECONDS)
            noticed_seconds = time.monotonic() - killed_at
            restarted = await dev.wait_for_line(
                r"embedded postgres restarted: pid (\d+)", RECOVERY_TIMEOUT_SECONDS
            )
            assert int(restarted.group(1)) != postgres_pid
            assert not is_zombie(postgres_pid), "the killed server was not reaped"

            nonces = (f"after-kill-{number}" for number in itertools.count())
            await eventually(
                lambda: write_status(client, next(nonces)),
                lambda status: status == 201,
                "a write answered 201 after PostgreSQL was restarted",
                RECOVERY_TIMEOUT_SECONDS,
            )
            recovered_seconds = time.monotonic() - killed_at
            stop_load.set()
            await asyncio.gather(*load)
            # The same nonce answers 200 again: the decision made before the kill was kept.
            assert await write_status(client, "before-kill") == 200
        print(
            f"\nmeasured: kill noticed after {noticed_seconds:.2f} s; "
            f"PostgreSQL kill to the next 201: {recovered_seconds:.2f} s; "
            f"statuses under load: {sorted(collections.Counter(statuses).items())}"
        )
        descendants = dev.descendants()
        dev.process.send_signal(signal.SIGTERM)
        exit_code = await dev.wait_for_exit(STOP_TIMEOUT_SECONDS)
    assert exit_code == 0, dev.tail
    assert "restarting embedded postgres in place on port" in dev.output
    assert still_alive(descendants) == []


async def test_dev_stops_with_an_error_when_the_embedded_broker_dies(tmp_path: Path) -> None:
    async with running_dev(tmp_path) as dev:
        await dev.wait_until_serving()
        kafka_pid = dev.embedded_pid("kafka")
        descendants = dev.descendants()

        killed_at = time.monotonic()
        os.kill(kafka_pid, signal.SIGKILL)
        exit_code = await dev.wait_for_exit(EXIT_TIMEOUT_SECONDS)
        exit_seconds = time.monotonic() - killed_at
    print(f"\nmeasured: Kafka kill to the exit of dev: {exit_seconds:.2f} s")
    assert exit_code == 1, dev.tail
    assert f"embedded kafka (pid {kafka_pid}) died: exit code -9 (ended by SIGKILL)" in dev.output
    assert "embedded kafka died and cannot be restarted in place" in dev.output
    assert "stopped after a failure" in dev.output
    assert "restarting embedded kafka" not in dev.output
    assert still_alive(descendants) == []
    assert not (tmp_path / ".ledgerbus" / "dev.env").exists()


async def test_dev_stops_with_an_error_when_the_supervisor_gives_up_on_the_gateway(
    tmp_path: Path,
) -> None:
    async with running_dev(tmp_path) as dev:
        await dev.wait_until_serving()
        descendants = dev.descendants()
        killed: set[int] = set()

        async def next_gateway_or_exit() -> int | None:
            if dev.process.returncode is not None:
                return -1
            return dev.gateway_pid(killed)

        # One crash more than the restart budget makes the supervisor give up.
        for _ in range(MAXIMUM_RESTARTS_PER_MINUTE + 1):
            pid = await eventually(
                next_gateway_or_exit,
                lambda found: found is not None,
                "a new gateway process",
                GATEWAY_RESPAWN_TIMEOUT_SECONDS,
            )
            assert pid is not None
            assert pid != -1, f"dev exited early:\n{dev.tail}"
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        exit_code = await dev.wait_for_exit(EXIT_TIMEOUT_SECONDS)
    assert exit_code == 1, dev.tail
    assert "[giving up: restarted" in dev.output
    assert "stopping the whole stack: the supervisor gave up on gateway" in dev.output
    assert "stopped after a failure (the supervisor gave up on gateway" in dev.output
    assert still_alive(descendants) == []
