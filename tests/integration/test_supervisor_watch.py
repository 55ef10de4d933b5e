"""The `make dev` watch over embedded servers, on real servers killed by PID with SIGKILL."""

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio

from ledgerbus.dev import EMBEDDED_SERVER_MAXIMUM_RESTARTS_PER_MINUTE, EmbeddedServerWatch
from shared.infra import EmbeddedKafka, EmbeddedRedis
from shared.infra.embedded_process import EmbeddedServer
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
RESTART_TIMEOUT_SECONDS = 15.0
FAILURE_TIMEOUT_SECONDS = 10.0


@pytest_asyncio.fixture(loop_scope="session")
async def redis_server(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    server = EmbeddedRedis(log_dir=tmp_path / "logs")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


class Console:
    """Everything the watch printed so far, read through pytest's capture."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.text = ""

    async def read(self) -> str:
        self.text += self._capsys.readouterr().out
        return self.text


async def kill_and_wait_for_restart(name: str, server: EmbeddedServer, console: Console) -> int:
    """SIGKILL ``server`` by its PID and wait until the watch says it runs again."""
    killed_pid = server.pid
    assert killed_pid is not None
    restarts_before = (await console.read()).count(f"embedded {name} restarted: pid")
    os.kill(killed_pid, signal.SIGKILL)
    await eventually(
        console.read,
        lambda text: text.count(f"embedded {name} restarted: pid") > restarts_before,
        f"the watch has restarted {name}",
        RESTART_TIMEOUT_SECONDS,
    )
    new_pid = server.pid
    assert new_pid not in (None, killed_pid)
    assert f"embedded {name} restarted: pid {new_pid}," in console.text
    return new_pid


async def test_watch_restarts_a_killed_server_in_place(
    redis_server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    console = Console(capsys)
    port = redis_server.port
    first_pid = redis_server.pid
    watch = EmbeddedServerWatch({"redis": redis_server})
    watch.start()
    try:
        await kill_and_wait_for_restart("redis", redis_server, console)
        client = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()
    finally:
        await watch.stop()
    assert redis_server.port == port
    text = await console.read()
    assert f"embedded redis (pid {first_pid}) died: exit code -9 (ended by SIGKILL)" in text
    assert f"restarting embedded redis in place on port {port}" in text


async def test_watch_gives_up_on_a_server_that_keeps_dying(
    redis_server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    console = Console(capsys)
    watch = EmbeddedServerWatch({"redis": redis_server})
    watch.start()
    try:
        for _ in range(EMBEDDED_SERVER_MAXIMUM_RESTARTS_PER_MINUTE):
            await kill_and_wait_for_restart("redis", redis_server, console)
        last_pid = redis_server.pid
        assert last_pid is not None
        os.kill(last_pid, signal.SIGKILL)
        failure = await asyncio.wait_for(watch.wait_for_failure(), FAILURE_TIMEOUT_SECONDS)
    finally:
        await watch.stop()
    assert failure.startswith("embedded redis keeps dying")
    # The server that died last is reaped, and nothing restarted it.
    assert redis_server.exited() is None
    assert redis_server.pid is None


async def test_watch_refuses_to_restart_the_broker(tmp_path: Path) -> None:
    kafka = EmbeddedKafka(log_dir=tmp_path / "logs")
    await asyncio.to_thread(kafka.start)
    watch = EmbeddedServerWatch({"kafka": kafka})
    watch.start()
    try:
        pid = kafka.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        failure = await asyncio.wait_for(watch.wait_for_failure(), FAILURE_TIMEOUT_SECONDS)
    finally:
        await watch.stop()
        await asyncio.to_thread(kafka.stop)
    assert "embedded kafka died and cannot be restarted in place" in failure
    assert "keeps its log in memory only" in failure
    assert kafka.pid is None
