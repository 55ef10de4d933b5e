"""Restarts on real processes: embedded servers killed with SIGKILL and started again in place,
and a process group that gives up on a child that keeps crashing and tells its owner.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis.asyncio

from shared.infra import EmbeddedKafka, EmbeddedPostgres, EmbeddedRedis, ProcessGroup, ProcessSpec
from shared.infra.embedded import POSTGRES_SYSTEM_USER
from shared.infra.embedded_process import EmbeddedServer
from shared.infra.process_group import GiveUp
from tests.support.children import child_environment, python_child
from tests.support.waiting import CONDITION_TIMEOUT_SECONDS, wait_until, wait_until_async

pytestmark = pytest.mark.integration

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CHILD_EXIT_TIMEOUT_SECONDS = 5.0
TEST_RESTART_BACKOFF_SECONDS = 0.05
TEST_MAXIMUM_RESTARTS_PER_MINUTE = 2


def process_table_lists(pid: int) -> bool:
    """Return whether ``pid`` exists at all, counting an unreaped zombie."""
    return Path(f"/proc/{pid}").exists()


def live_process_group_members(process_group_id: int) -> list[int]:
    """Return the PIDs in ``process_group_id`` that are not zombies.

    Orphaned server workers are reaped by the init process, which in a container may
    never happen; a zombie holds nothing, so only live members count as left behind.
    """
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            in_group = os.getpgid(process.pid) == process_group_id
        except ProcessLookupError:
            continue
        if in_group and process.info["status"] != psutil.STATUS_ZOMBIE:
            members.append(process.pid)
    return members


def kill_and_wait_until_noticed(server: EmbeddedServer) -> int:
    """SIGKILL ``server`` by its PID, wait until it reports the exit, and return the PID."""
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: server.exited() is not None, f"{server.process_name} reports its exit")
    ended = server.exited()
    assert ended is not None
    assert (ended.pid, ended.exit_code) == (pid, -signal.SIGKILL)
    assert ended.describe() == "exit code -9 (ended by SIGKILL)"
    # Noticing the exit must not reap the server: the zombie keeps its PID reserved, so
    # the leftovers in its process group can still be ended safely by that number.
    assert process_table_lists(pid)
    assert server.pid is None
    return pid


async def test_embedded_postgres_starts_again_after_sigkill_with_its_data_and_port(
    postgres: EmbeddedPostgres,
) -> None:
    connection = await asyncpg.connect(postgres.url)
    try:
        await connection.execute("CREATE TABLE kept (value int); INSERT INTO kept VALUES (7)")
    finally:
        await connection.close()
    port = postgres.port

    # stop() after a SIGKILL ends the workers the server left, reaps it, and start() follows.
    first_pid = kill_and_wait_until_noticed(postgres)
    postgres.stop()
    assert not process_table_lists(first_pid), "the killed server was not reaped"
    assert live_process_group_members(first_pid) == []
    postgres.start()

    # start() alone also cleans up after a server that was killed.
    second_pid = kill_and_wait_until_noticed(postgres)
    postgres.start()
    assert live_process_group_members(second_pid) == []

    assert postgres.port == port
    assert postgres.pid not in (None, first_pid, second_pid)
    connection = await asyncpg.connect(postgres.url)
    try:
        assert await connection.fetchval("SELECT value FROM kept") == 7
    finally:
        await connection.close()


def test_embedded_postgres_removes_a_lock_file_naming_another_process(
    postgres: EmbeddedPostgres,
) -> None:
    postgres.stop()
    # A sleeping process stands for an unrelated one that reused the PID of a killed
    # server. PostgreSQL alone refuses to start while that PID is in use by its own user
    # (it ignores processes it may not signal), so as root the sleeper runs as that user.
    user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None
    unrelated = subprocess.Popen(["sleep", "60"], user=user)
    try:
        lock_file = postgres.data_dir / "postmaster.pid"
        lock_file.write_text(f"{unrelated.pid}\n{postgres.data_dir}\n")
        # start() returns only once the server answers a query.
        postgres.start()
    finally:
        unrelated.kill()
        unrelated.wait()
    assert postgres.pid is not None


async def test_embedded_redis_starts_again_after_sigkill_on_its_port(
    redis_server: EmbeddedRedis,
) -> None:
    port = redis_server.port
    killed_pid = kill_and_wait_until_noticed(redis_server)
    redis_server.start()
    assert not process_table_lists(killed_pid), "the killed server was not reaped"
    assert redis_server.port == port
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


def test_only_servers_that_keep_their_state_may_restart_in_place() -> None:
    assert EmbeddedKafka.restart_in_place_refusal is not None
    assert "in memory" in EmbeddedKafka.restart_in_place_refusal
    assert EmbeddedPostgres.restart_in_place_refusal is None
    assert EmbeddedRedis.restart_in_place_refusal is None


async def test_process_group_tells_its_owner_when_it_gives_up() -> None:
    sink = io.StringIO()
    heard: list[GiveUp] = []
    group = ProcessGroup(
        sink,
        on_give_up=heard.append,
        restart_backoff_initial_seconds=TEST_RESTART_BACKOFF_SECONDS,
        maximum_restarts_per_minute=TEST_MAXIMUM_RESTARTS_PER_MINUTE,
    )
    steady = "import time; print('ready'); time.sleep(60)"
    await group.start(ProcessSpec("steady", python_child(steady), child_environment(), True))
    await group.start(
        ProcessSpec("crasher", python_child("raise SystemExit(3)"), child_environment(), True)
    )
    # The owner may start waiting after the give-up happened and still learns of it.
    await wait_until_async(lambda: bool(heard), "the give-up callback has fired")
    give_up = await asyncio.wait_for(group.wait_for_give_up(), CHILD_EXIT_TIMEOUT_SECONDS)

    assert heard == [give_up]
    assert group.give_ups == (give_up,)
    assert give_up.name == "crasher"
    assert give_up.restarts == TEST_MAXIMUM_RESTARTS_PER_MINUTE
    assert give_up.last_exit_code == 3
    assert "crasher crashed again (exit code 3)" in give_up.describe()
    # The group only reports; the owner decides, so the other child still runs.
    assert group.running("steady")
    await group.stop_all()


async def test_process_group_records_a_give_up_when_the_callback_fails() -> None:
    sink = io.StringIO()

    def failing_callback(_give_up: GiveUp) -> None:
        raise RuntimeError("the owner is broken")

    group = ProcessGroup(
        sink,
        on_give_up=failing_callback,
        restart_backoff_initial_seconds=TEST_RESTART_BACKOFF_SECONDS,
        maximum_restarts_per_minute=TEST_MAXIMUM_RESTARTS_PER_MINUTE,
    )
    await group.start(
        ProcessSpec("crasher", python_child("raise SystemExit(4)"), child_environment(), True)
    )
    give_up = await asyncio.wait_for(group.wait_for_give_up(), CONDITION_TIMEOUT_SECONDS)
    assert give_up.name == "crasher"
    assert "[the give-up callback failed: RuntimeError('the owner is broken')]" in (sink.getvalue())
    await group.stop_all()
