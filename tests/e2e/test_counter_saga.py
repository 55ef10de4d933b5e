"""A service defined only in tests/ (tests/counter) proves the engine's saga pieces on the real
broker and PostgreSQL: a move across two partitions completes, a refused credit is
compensated, an unreadable leg is compensated by the failure hook, a leg that never answers is
ended by its deadline, and the caller is answered once the move is final (by whichever owner
finishes it). The platform's audit then replays the counter's read models from the log."""

import asyncio
import functools
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from shared.contracts.base import ContractModel
from shared.contracts.envelope import CloudEvent, build_envelope, encode_envelope
from shared.engine.audit import audit_projections
from shared.engine.inbox import ReplyReader, replies_channel
from shared.engine.messages import (
    CONTENT_TYPE_HEADER,
    FORWARD_HOPS_HEADER,
    NOTIFY_HEADER,
    NOTIFY_HEADER_VALUE,
)
from shared.http.commands import CommandSender, ReplyWaiter
from shared.http.errors import DomainHTTPError
from shared.infra.ports import free_port
from shared.infra.process_group import ProcessGroup, ProcessSpec
from shared.infra.provision import Infrastructure
from shared.kafka.producer import partition_for
from shared.kafka.topics import TopicDefinition, create_topics
from shared.observability.consumers import ConsumerWatch
from shared.postgres.migrations import ensure_platform_tables, migrate
from shared.postgres.notify import NotificationHub
from shared.settings import PlatformSettings
from tests.counter.contracts import (
    COMMANDS_TOPIC,
    DEPOSIT_V1,
    EVENTS_TOPIC,
    MOVE_V1,
    Deposit,
    Move,
)
from tests.counter.service import MIGRATIONS, PROCESSOR, PROJECTIONS, PROJECTOR, SCHEMA
from tests.support.stacks import create_database, read_topic
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
PARTITIONS = 4
REPLY_TIMEOUT_SECONDS = 30.0
DEADLINE_SECONDS = 1.5
CALLER = "tests/counter-caller"


class KafkaPublisher:
    """Publishes commands as the gateway does: keyed, `acks=all`, asking for NOTIFY."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(self, topic: str, key: str, envelope: CloudEvent) -> None:
        headers = [(CONTENT_TYPE_HEADER, b"application/cloudevents+json"),
                   (NOTIFY_HEADER, NOTIFY_HEADER_VALUE)]  # fmt: skip
        await self._producer.send_and_wait(
            topic, encode_envelope(envelope), key=key.encode(), headers=headers
        )


@dataclass
class Counters:
    dsn: str
    settings: PlatformSettings
    sender: CommandSender
    producer: AIOKafkaProducer

    async def send(self, key: str, message_type: str, data: ContractModel) -> tuple[int, Any]:
        envelope = build_envelope(message_type=message_type, source=CALLER, subject=key, data=data)
        try:
            response = await self.sender.send(key, envelope)
        except DomainHTTPError as error:
            return error.status_code, {"code": error.code}
        return response.status_code, orjson.loads(response.body)

    async def fetch(self, query: str, *arguments: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn)
        try:
            return list(await connection.fetch(query, *arguments))
        finally:
            await connection.close()


async def _prepare(dsn: str, bootstrap: str, prefix: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await ensure_platform_tables(connection, SCHEMA)
        await migrate(connection, SCHEMA, MIGRATIONS)
    finally:
        await connection.close()
    names = (COMMANDS_TOPIC, EVENTS_TOPIC, f"{COMMANDS_TOPIC}.dlq", f"{EVENTS_TOPIC}.dlq")
    await create_topics(bootstrap, [TopicDefinition(name, PARTITIONS, 1) for name in names], prefix)


def _specs(environment: dict[str, str]) -> list[ProcessSpec]:
    return [
        ProcessSpec(
            name=name,
            argv=(sys.executable, "-m", "tests.counter.service", role),
            environment={**environment, "LEDGERBUS_OPS_PORT": str(free_port())},
        )
        for name, role in ((PROCESSOR, "processor"), (PROJECTOR, "projector"))
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def counters(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Counters]:
    dsn = await create_database(infrastructure.database_url)
    prefix = f"c{uuid.uuid4().hex[:6]}."
    bootstrap = infrastructure.kafka_bootstrap_servers
    await _prepare(dsn, bootstrap, prefix)
    environment = {**os.environ, **infrastructure.environment(), "DATABASE_URL": dsn,
                   "LEDGERBUS_TOPIC_PREFIX": prefix, "PYTHONUNBUFFERED": "1"}  # fmt: skip
    settings = PlatformSettings(
        kafka_bootstrap_servers=bootstrap, database_url=dsn, ledgerbus_topic_prefix=prefix
    )
    log = (Path(tmp_path_factory.mktemp("counter")) / "stack.log").open("w")
    group = ProcessGroup(sink=log)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    hub = NotificationHub(dsn, application_name="counter-tests")
    pool = await asyncpg.create_pool(dsn)
    reader = ReplyReader(pool, SCHEMA, PROCESSOR)
    waiter = ReplyWaiter(hub, replies_channel(SCHEMA), reader, CALLER)
    try:
        for spec in _specs(environment):
            await group.start(spec)
        await producer.start()
        await hub.start()
        sender = CommandSender(
            service="counter", publisher=KafkaPublisher(producer), waiter=waiter,
            topic=f"{prefix}{COMMANDS_TOPIC}", timeout_seconds=REPLY_TIMEOUT_SECONDS,
        )  # fmt: skip
        state = Counters(dsn, settings, sender, producer)
        await _wait_until_owned(state, prefix)
        yield state
    finally:
        await hub.stop()
        await producer.stop()
        await pool.close()
        await group.stop_all()
        log.close()


async def _held(state: Counters, consumer: str, topic: str) -> int:
    rows = await state.fetch(
        "SELECT count(*) AS n FROM counter.partition_owners WHERE consumer = $1 AND topic = $2"
        " AND heartbeat_at > now() - interval '2 seconds'",
        consumer,
        topic,
    )
    return int(rows[0]["n"])


async def _wait_until_owned(state: Counters, prefix: str) -> None:
    held = ((PROCESSOR, COMMANDS_TOPIC), (PROCESSOR, EVENTS_TOPIC), (PROJECTOR, EVENTS_TOPIC))
    for consumer, topic in held:
        await eventually(
            functools.partial(_held, state, consumer, f"{prefix}{topic}"),
            lambda n: n == PARTITIONS,
            f"{consumer} to hold {topic}",
        )


def apart(tag: str) -> tuple[str, str]:
    """A source and a target named `tag` on two different partitions."""
    source = f"src-{tag}-{uuid.uuid4().hex[:6]}"
    index = 0
    while True:
        target = f"{tag}-{uuid.uuid4().hex[:6]}-{index}"
        if partition_for(target.encode(), PARTITIONS) != partition_for(source.encode(), PARTITIONS):
            return source, target
        index += 1


async def funded(counters: Counters, counter: str, amount: int) -> None:
    status, body = await counters.send(counter, DEPOSIT_V1, Deposit(counter=counter, amount=amount))
    assert (status, body["balance"]) == (201, amount)


async def move(counters: Counters, source: str, target: str, amount: int) -> tuple[int, Any]:
    command = Move(move_id=uuid.uuid4().hex, source=source, target=target, amount=amount,
                   deadline_seconds=DEADLINE_SECONDS)  # fmt: skip
    return await counters.send(source, MOVE_V1, command)


async def balances(counters: Counters, *names: str) -> dict[str, int]:
    rows = await counters.fetch(
        "SELECT counter, balance FROM counter.counters WHERE counter = ANY($1)", list(names)
    )
    return {row["counter"]: row["balance"] for row in rows}


async def test_a_move_across_two_partitions_completes_and_answers_once_final(
    counters: Counters,
) -> None:
    source, target = apart("plain")
    await funded(counters, source, 100)
    status, body = await move(counters, source, target, 30)
    assert (status, body["outcome"]) == (201, "completed")
    assert body["position"]  # the position of the settlement event, once published
    assert await balances(counters, source, target) == {source: 70, target: 30}


async def test_a_refused_credit_is_compensated_by_a_refund(counters: Counters) -> None:
    source, target = apart("frozen")
    await funded(counters, source, 50)
    status, body = await move(counters, source, target, 20)
    assert (status, body["code"]) == (409, "move_refused")
    assert await balances(counters, source) == {source: 50}


async def test_an_unreadable_leg_is_compensated_by_the_failure_hook(counters: Counters) -> None:
    source, target = apart("garbled")
    await funded(counters, source, 40)
    status, body = await move(counters, source, target, 15)
    assert (status, body["code"]) == (409, "move_unreadable")
    assert await balances(counters, source) == {source: 40}
    dead = await read_topic(
        counters.settings.kafka_bootstrap_servers,
        counters.settings.topic(f"{COMMANDS_TOPIC}.dlq"),
    )
    codes = [dict(r.headers)["error_code"] for r in dead if target.encode() in (r.value or b"")]
    assert codes == [b"unknown_type"]


async def test_a_leg_that_never_answers_is_ended_by_its_deadline(counters: Counters) -> None:
    source, target = apart("blackhole")
    await funded(counters, source, 25)
    status, body = await move(counters, source, target, 25)
    assert (status, body["code"]) == (409, "move_expired")
    assert await balances(counters, source) == {source: 25}
    late = await counters.fetch("SELECT status FROM counter.credits WHERE target = $1", target)
    assert [row["status"] for row in late] == ["cancelled"]


async def test_a_misrouted_copy_of_a_pending_move_cannot_answer_it(counters: Counters) -> None:
    """Reproduces an answer overwritten: a re-sent copy of a move whose saga was still pending,
    landing on another partition past the forward limit, once stored `misrouted` as the move's
    answer, and first-wins kept it after the move settled."""
    source, target = apart("blackhole")
    await funded(counters, source, 5)
    command = Move(move_id=uuid.uuid4().hex, source=source, target=target, amount=5,
                   deadline_seconds=3 * DEADLINE_SECONDS)  # fmt: skip
    envelope = build_envelope(message_type=MOVE_V1, source=CALLER, subject=source, data=command)
    answer = asyncio.create_task(counters.sender.send(source, envelope))
    await eventually(
        functools.partial(
            counters.fetch, "SELECT status FROM counter.moves WHERE move_id = $1", command.move_id
        ),
        lambda rows: [row["status"] for row in rows] == ["pending"],
        "the move pending",
    )
    wrong = (partition_for(source.encode(), PARTITIONS) + 1) % PARTITIONS
    await counters.producer.send_and_wait(
        counters.settings.topic(COMMANDS_TOPIC), encode_envelope(envelope), key=source.encode(),
        partition=wrong, headers=[(FORWARD_HOPS_HEADER, b"9")],
    )  # fmt: skip
    response = await answer
    assert response.status_code == 409
    assert orjson.loads(response.body)["code"] == "move_expired"


async def test_an_unreadable_leg_naming_no_move_is_dead_lettered_and_halts_nothing(
    counters: Counters,
) -> None:
    """Reproduces a halt: the failure hook raised on a leg too incomplete to compensate."""
    target = f"plain-{uuid.uuid4().hex[:6]}"
    broken = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "tests/old-version",
              "type": "counter.apply_credit.v0", "time": "2026-11-23T10:00:00Z",
              "data": {"move_id": "m", "target": target}}  # fmt: skip
    await counters.producer.send_and_wait(
        counters.settings.topic(COMMANDS_TOPIC), orjson.dumps(broken), key=target.encode()
    )
    await funded(counters, target, 7)  # decided behind it, on the same partition


async def test_money_is_conserved_and_the_read_models_replay_exactly(counters: Counters) -> None:
    source, target = apart("again")
    await funded(counters, source, 10)
    assert (await move(counters, source, target, 10))[0] == 201
    assert (await move(counters, source, target, 1))[1]["code"] == "insufficient_funds"
    moves = await counters.fetch("SELECT count(*) AS n FROM counter.moves")
    assert moves[0]["n"] == 6
    await eventually(
        lambda: counters.fetch("SELECT status FROM counter.moves WHERE status <> 'settled'"),
        lambda rows: rows == [],
        "every move settled",
    )
    total = await counters.fetch("SELECT sum(balance) AS s FROM counter.counters")
    assert total[0]["s"] == 100 + 50 + 40 + 25 + 5 + 7 + 10
    watches = [ConsumerWatch(SCHEMA, PROCESSOR, counters.settings.topic(COMMANDS_TOPIC)),
               ConsumerWatch(SCHEMA, PROJECTOR, counters.settings.topic(EVENTS_TOPIC))]  # fmt: skip
    report = await audit_projections(counters.settings, "counter", PROJECTIONS, watches)
    assert report.matches, report.as_json()
    assert report.rows_compared > 0
