"""Integration tests for shared.infra: real embedded servers and the process supervisor."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.infra import (
    EmbeddedKafka,
    EmbeddedPostgres,
    EmbeddedRedis,
    Origin,
    PortInUseError,
    ProcessGroup,
    ProcessSpec,
    free_port,
    provision,
)
from shared.postgres.pool import create_pool
from tests.support.children import child_environment, python_child
from tests.support.waiting import wait_until, wait_until_async

pytestmark = pytest.mark.integration

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
KAFKA_RECORD_TIMEOUT_SECONDS = 10.0
CHILD_EXIT_TIMEOUT_SECONDS = 5.0
STUBBORN_STOP_TIMEOUT_SECONDS = 1.0
TEST_RESTART_BACKOFF_SECONDS = 0.05
TEST_MAXIMUM_RESTARTS_PER_MINUTE = 2


def process_is_gone(pid: int) -> bool:
    """Return whether ``pid`` no longer exists, counting an unreaped zombie as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def assert_no_process(pid: int) -> None:
    """Assert that neither ``pid`` nor any process in its process group remains."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # Each server leads its own process group, so this also covers forked workers.
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


async def test_embedded_kafka_round_trips_a_record(kafka: EmbeddedKafka) -> None:
    topic = "infra-test"
    producer = AIOKafkaProducer(bootstrap_servers=kafka.url)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"key")
    finally:
        await producer.stop()
    # Without a group id the consumer reads every partition of the auto-created topic
    # (the broker creates several) and skips the consumer-group join delay.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.url, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), KAFKA_RECORD_TIMEOUT_SECONDS)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"key", b"hello")

    pid = kafka.pid
    assert pid is not None
    kafka.stop()
    assert kafka.pid is None
    assert_no_process(pid)


def test_embedded_kafka_names_the_variable_when_its_port_is_taken(log_dir: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        with pytest.raises(PortInUseError, match=rf"port {port}.*LEDGERBUS_KAFKA_PORT"):
            EmbeddedKafka(port, log_dir=log_dir).start()


async def test_embedded_postgres_answers_and_isolates_databases(
    postgres: EmbeddedPostgres,
) -> None:
    connection = await asyncpg.connect(postgres.url)
    try:
        assert await connection.fetchval("SELECT 1") == 1
        assert await connection.fetchval("SELECT current_database()") == "ledgerbus"
        await connection.execute("CREATE TABLE kept (value int)")
    finally:
        await connection.close()

    isolated_url = postgres.create_database("isolated_test")
    assert isolated_url.endswith("/isolated_test")
    isolated = await asyncpg.connect(isolated_url)
    try:
        assert await isolated.fetchval("SELECT current_database()") == "isolated_test"
    finally:
        await isolated.close()
    # The open session proves drop_database ends sessions instead of failing on them.
    lingering = await asyncpg.connect(isolated_url)
    postgres.drop_database("isolated_test")
    await lingering.close(timeout=1)
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(isolated_url)

    first_pid = postgres.pid
    assert first_pid is not None
    postgres.stop()
    assert_no_process(first_pid)

    # A second start reuses the data directory and the port, so data and URL survive.
    postgres.start()
    connection = await asyncpg.connect(postgres.url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM kept") == 0
    finally:
        await connection.close()


async def test_pooled_statements_are_planned_with_their_real_parameters(
    postgres: EmbeddedPostgres,
) -> None:
    """A generic plan chosen while the tables were small cut ingest fivefold (`make bench`,
    ingest after the one-at-a-time phase): pools never switch to generic plans."""
    pool = await create_pool(postgres.url)
    try:
        assert await pool.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await pool.close()


async def test_a_batch_of_keys_probes_the_index_however_large_the_table(
    postgres: EmbeddedPostgres,
) -> None:
    """`make bench` (issue 6): a batch's replies were joined with the whole inbox by hashing
    every row the consumer ever handled, 20 ms at 30,000 rows and growing with the log. Pools
    price a random page for cached data, so the planner probes the primary key."""
    pool = await create_pool(postgres.url)
    keys = [f"command-{index}" for index in range(30_000)]
    try:
        await pool.execute(
            "CREATE TABLE probe_inbox (consumer text, source text, message_id text,"
            " reply_status smallint, PRIMARY KEY (consumer, source, message_id))"
        )
        await pool.execute(
            "INSERT INTO probe_inbox SELECT 'processor', 'gateway', key, NULL"
            " FROM unnest($1::text[]) AS key",
            keys,
        )
        await pool.execute("ANALYZE probe_inbox")
        plan = "\n".join(
            row[0] for row in await pool.fetch(
                "EXPLAIN UPDATE probe_inbox i SET reply_status = 201"
                " FROM unnest($1::text[], $2::text[]) AS u(source, message_id)"
                " WHERE i.consumer = 'processor' AND i.source = u.source"
                " AND i.message_id = u.message_id AND i.reply_status IS NULL",
                ["gateway"] * 460, keys[-460:],
            )
        )  # fmt: skip
        assert "Index Scan" in plan and "Hash" not in plan, plan
    finally:
        await pool.execute("DROP TABLE IF EXISTS probe_inbox")
        await pool.close()


async def test_embedded_redis_sets_and_gets(redis_server: EmbeddedRedis) -> None:
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await client.set("infra-test", "value")
        assert await client.get("infra-test") == b"value"
    finally:
        await client.aclose()

    pid = redis_server.pid
    assert pid is not None
    redis_server.stop()
    assert_no_process(pid)


def test_provision_uses_urls_from_the_environment_and_starts_nothing(tmp_path: Path) -> None:
    environment = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker.example:9092",
        "DATABASE_URL": "postgresql://app:secret@db.example:5432/ledgerbus",
        "REDIS_URL": "redis://cache.example:6379/0",
    }
    provisioned = provision(environment, tmp_path, kafka_port=None, clean=False)
    infrastructure = provisioned.infrastructure
    assert infrastructure.kafka_bootstrap_servers == "broker.example:9092"
    assert infrastructure.database_url == environment["DATABASE_URL"]
    assert infrastructure.started == ()
    assert {part.origin for part in provisioned.parts} == {Origin.EXTERNAL}
    description = "\n".join(provisioned.describe())
    assert "secret" not in description
    assert "from DATABASE_URL" in description
    provisioned.stop()


def test_provision_starts_embedded_parts_and_stops_only_those(tmp_path: Path) -> None:
    environment = {"REDIS_URL": "redis://cache.example:6379/0"}
    kafka_port = free_port()
    provisioned = provision(environment, tmp_path, kafka_port=kafka_port, clean=True)
    try:
        infrastructure = provisioned.infrastructure
        assert infrastructure.started == ("kafka", "postgres")
        assert infrastructure.kafka_bootstrap_servers == f"127.0.0.1:{kafka_port}"
        assert infrastructure.redis_url == environment["REDIS_URL"]
        pids = [part.pid for part in provisioned.parts if part.pid is not None]
        assert len(pids) == 2
        embedded_servers = provisioned.embedded_servers()
        assert sorted(embedded_servers) == ["kafka", "postgres"]
        assert [server.pid for server in embedded_servers.values()] == pids
        assert not any(process_is_gone(pid) for pid in pids)
        assert any("embedded" in line for line in provisioned.describe())
    finally:
        provisioned.stop()
    for pid in pids:
        assert_no_process(pid)


def test_embedded_postgres_dies_with_its_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "postgres.pid"
    parent_code = f"""
        import pathlib, time
        from shared.infra import EmbeddedPostgres
        server = EmbeddedPostgres(pathlib.Path({str(tmp_path / "postgres")!r}),
                                  log_dir=pathlib.Path({str(tmp_path / "logs")!r}))
        server.start()
        staging = pathlib.Path({str(pid_file)!r} + ".partial")
        staging.write_text(str(server.pid))
        staging.replace({str(pid_file)!r})
        time.sleep(60)
    """
    parent = subprocess.Popen(python_child(parent_code), env=child_environment())
    try:
        wait_until(pid_file.exists, "the parent has started PostgreSQL")
        postgres_pid = int(pid_file.read_text())
    finally:
        parent.kill()
        parent.wait()
    wait_until(lambda: process_is_gone(postgres_pid), "PostgreSQL has exited with its parent")


async def test_process_group_prefixes_each_line_with_the_padded_name() -> None:
    sink = io.StringIO()
    group = ProcessGroup(sink)
    await group.start(ProcessSpec("api", python_child("print('hello')"), child_environment()))
    await group.start(
        ProcessSpec("ledger-processor", python_child("print('world')"), child_environment())
    )
    assert await group.wait_for_exit("api", CHILD_EXIT_TIMEOUT_SECONDS) == 0
    assert await group.wait_for_exit("ledger-processor", CHILD_EXIT_TIMEOUT_SECONDS) == 0
    await group.stop_all()
    lines = sink.getvalue().splitlines()
    assert "ledger-processor | world" in lines
    assert f"{'api':<{len('ledger-processor')}} | hello" in lines
    assert "\x1b[" not in sink.getvalue()


async def test_process_group_stops_children_and_kills_one_that_ignores_sigterm() -> None:
    sink = io.StringIO()
    exits: dict[str, int] = {}
    group = ProcessGroup(sink, on_exit=exits.__setitem__)
    stubborn = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('ready')
        time.sleep(60)
    """
    polite = "import time; print('ready'); time.sleep(60)"
    await group.start(ProcessSpec("stubborn", python_child(stubborn), child_environment()))
    await group.start(ProcessSpec("polite", python_child(polite), child_environment()))
    await wait_until_async(
        lambda: sink.getvalue().count("| ready") == 2, "both children have started"
    )
    pids = [group.pid("stubborn"), group.pid("polite")]

    started = time.monotonic()
    await group.stop_all(timeout_seconds=STUBBORN_STOP_TIMEOUT_SECONDS)
    elapsed_seconds = time.monotonic() - started

    assert exits == {"polite": -signal.SIGTERM, "stubborn": -signal.SIGKILL}
    assert elapsed_seconds >= STUBBORN_STOP_TIMEOUT_SECONDS
    assert not group.running("stubborn")
    for pid in pids:
        assert pid is not None
        assert_no_process(pid)


async def test_process_group_restarts_a_crashed_child() -> None:
    sink = io.StringIO()
    group = ProcessGroup(sink, restart_backoff_initial_seconds=TEST_RESTART_BACKOFF_SECONDS)
    code = "import time; print('ready'); time.sleep(60)"
    spec = ProcessSpec("worker", python_child(code), child_environment(), restart_on_exit=True)
    await group.start(spec)
    first_pid = group.pid("worker")
    assert first_pid is not None

    group.kill("worker", signal.SIGKILL)
    await wait_until_async(
        lambda: group.pid("worker") not in (None, first_pid), "the worker has been restarted"
    )
    second_pid = group.pid("worker")
    await group.restart("worker")
    assert group.pid("worker") not in (None, first_pid, second_pid)

    await group.stop_all()
    assert not group.running("worker")
    assert "[restarting in" in sink.getvalue()


async def test_process_group_gives_up_on_a_child_that_keeps_crashing() -> None:
    sink = io.StringIO()
    exit_codes: list[int] = []
    group = ProcessGroup(
        sink,
        on_exit=lambda _name, code: exit_codes.append(code),
        restart_backoff_initial_seconds=TEST_RESTART_BACKOFF_SECONDS,
        maximum_restarts_per_minute=TEST_MAXIMUM_RESTARTS_PER_MINUTE,
    )
    spec = ProcessSpec("crasher", python_child("raise SystemExit(3)"), child_environment(), True)
    await group.start(spec)
    await wait_until_async(lambda: "[giving up" in sink.getvalue(), "the group has given up")
    assert exit_codes == [3] * (TEST_MAXIMUM_RESTARTS_PER_MINUTE + 1)
    assert not group.running("crasher")
    await group.stop_all()


def test_process_group_children_die_with_the_supervisor(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    supervisor_code = f"""
        import asyncio, os, pathlib, sys
        from shared.infra import ProcessGroup, ProcessSpec

        async def main():
            group = ProcessGroup()
            argv = [sys.executable, "-c", "import time; time.sleep(60)"]
            await group.start(ProcessSpec("sleeper", argv, dict(os.environ)))
            staging = pathlib.Path({str(pid_file)!r} + ".partial")
            staging.write_text(str(group.pid("sleeper")))
            staging.replace({str(pid_file)!r})
            await asyncio.sleep(60)

        asyncio.run(main())
    """
    supervisor = subprocess.Popen(python_child(supervisor_code), env=child_environment())
    try:
        wait_until(pid_file.exists, "the supervisor has started its child")
        child_pid = int(pid_file.read_text())
    finally:
        supervisor.kill()
        supervisor.wait()
    wait_until(lambda: process_is_gone(child_pid), "the child has exited with its supervisor")
