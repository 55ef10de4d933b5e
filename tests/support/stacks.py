"""Isolated Ledgerbus stacks on the session's real infrastructure.

Each stack gets a fresh database and a fresh topic prefix on the shared broker, then runs the
real service processes (the same `ledgerbus run ...` commands as `make dev`).
"""

import contextlib
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from ledgerbus.registry import services
from ledgerbus.stack import Stack, prepare, start_stack
from services.analytics.settings import KEY_PREFIX_ROOT
from shared.infra.process_group import ProcessGroup
from shared.infra.provision import Infrastructure
from shared.kafka.log_end import LogEndProbe
from shared.kafka.topics import TopicDefinition, create_topics
from tests.support.waiting import eventually

HEALTHAI_KEY = "dev-healthai-key"
TRAVELAI_KEY = "dev-travelai-key"
HTTP_TIMEOUT_SECONDS = 30.0
READ_TOPIC_TIMEOUT_SECONDS = 60.0
PARTITIONS = 4


async def create_database(base_url: str) -> str:
    """A new empty database on the same server; returns its URL."""
    name = f"lb_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(base_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    parts = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@dataclass(slots=True)
class LedgerStack:
    environment: dict[str, str]
    log_path: Path
    stack: Stack | None = None
    extra_groups: list[ProcessGroup] = field(default_factory=list)
    topic_partitions: dict[str, int] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return self.environment["DATABASE_URL"]

    @property
    def bootstrap(self) -> str:
        return self.environment["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def gateway_url(self) -> str:
        assert self.stack is not None
        return self.stack.gateway_url

    def topic(self, name: str) -> str:
        return f"{self.environment['LEDGERBUS_TOPIC_PREFIX']}{name}"

    def client(self, key: str | None = HEALTHAI_KEY) -> httpx.AsyncClient:
        headers = {"X-Api-Key": key} if key else {}
        return httpx.AsyncClient(
            base_url=self.gateway_url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS
        )

    async def start(
        self, processes: tuple[str, ...], sink: TextIO, *, restart_on_exit: bool = False
    ) -> None:
        self.stack = await start_stack(
            self.environment, sink=sink, processes=processes, restart_on_exit=restart_on_exit
        )

    async def stop(self) -> None:
        if self.stack is not None:
            await self.stack.stop()
        for group in self.extra_groups:
            await group.stop_all()

    async def fetch(self, query: str, *arguments: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn)
        try:
            return list(await connection.fetch(query, *arguments))
        finally:
            await connection.close()

    async def wait_until_owned(
        self, consumer: str, topic: str, partitions: int = PARTITIONS, *, schema: str = "ledger"
    ) -> None:
        """Until the named consumer holds every partition of the topic (a live heartbeat)."""
        await eventually(
            lambda: self.fetch(
                f"SELECT count(*) AS n FROM {schema}.partition_owners WHERE consumer = $1"
                " AND topic = $2 AND heartbeat_at > now() - interval '2 seconds'",
                consumer,
                self.topic(topic),
            ),
            lambda rows: rows[0]["n"] == partitions,
            f"{consumer} to hold {topic}",
        )

    async def wait_until_ready(self) -> None:
        """Until every running processor and projector holds all the partitions it consumes,
        and a running aggregator answers from a live generation it has claimed."""
        assert self.stack is not None, "the stack runs"
        running = set(self.stack.group.names())
        for service in services():
            for process in service.processes:
                if process.name not in running:
                    continue
                if service.schema is None:
                    await self.wait_until_aggregating(process.consumes)
                    continue
                for topic in process.consumes:
                    await self.wait_until_owned(
                        process.name, topic, self.partitions_of(topic), schema=service.schema
                    )

    @property
    def analytics_prefix(self) -> str:
        """Where this stack's analytics keys live in Redis (see services/analytics/settings)."""
        return f"{KEY_PREFIX_ROOT}{self.environment['LEDGERBUS_TOPIC_PREFIX']}:"

    async def wait_until_aggregating(self, topics: tuple[str, ...]) -> None:
        """Until a live generation exists and every partition of `topics` is claimed in it."""
        redis = Redis.from_url(self.environment["REDIS_URL"])
        prefix = self.analytics_prefix

        async def claimed() -> int:
            live = await redis.get(f"{prefix}generation")
            if live is None:
                return -1
            base = f"{prefix}{live.decode() if isinstance(live, bytes) else live}:epoch:"
            names = [
                f"{base}{self.topic(topic)}:{partition}"
                for topic in topics
                for partition in range(self.partitions_of(topic))
            ]
            return int(await redis.exists(*names)) - len(names)

        try:
            await eventually(claimed, lambda missing: missing == 0, "the aggregator to claim")
        finally:
            await redis.aclose()

    def partitions_of(self, topic: str) -> int:
        return self.topic_partitions.get(topic, PARTITIONS)


@contextlib.asynccontextmanager
async def running_stack(
    infrastructure: Infrastructure,
    log_path: Path,
    processes: tuple[str, ...],
    extra: Mapping[str, str] = {},
    topic_partitions: Mapping[str, int] = {},
    *,
    restart_on_exit: bool = False,
) -> AsyncIterator[LedgerStack]:
    """A fresh stack running `processes`, its output in `log_path`, stopped on exit;
    `restart_on_exit` supervises them as `make dev` does (a crashed process is restarted)."""
    stack = await new_ledger_stack(infrastructure, log_path, extra, topic_partitions)
    with log_path.open("w") as sink:
        await stack.start(processes, sink, restart_on_exit=restart_on_exit)
        try:
            yield stack
        finally:
            await stack.stop()


async def new_ledger_stack(
    infrastructure: Infrastructure,
    log_path: Path,
    extra: Mapping[str, str] = {},
    topic_partitions: Mapping[str, int] = {},
) -> LedgerStack:
    """A fresh database and topic prefix, migrated, with topics created; `topic_partitions`
    gives some topics another partition count than deploy/topics.json."""
    prefix = f"t{secrets.token_hex(4)}."
    if topic_partitions:
        await create_topics(
            infrastructure.kafka_bootstrap_servers,
            [TopicDefinition(name, count, 1) for name, count in topic_partitions.items()],
            prefix,
        )
    environment = {
        **infrastructure.environment(),
        "DATABASE_URL": await create_database(infrastructure.database_url),
        "LEDGERBUS_TOPIC_PREFIX": prefix,
        "LEDGERBUS_ENV": "dev",
        **extra,
    }
    await prepare(environment)
    return LedgerStack(
        environment=environment, log_path=log_path, topic_partitions=dict(topic_partitions)
    )


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a topic, from offset 0 to the current end, in partition order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        probe = LogEndProbe(bootstrap, client_id="tests-log-end")
        await probe.start()
        try:
            ends = await probe.end_offsets(partitions)
        finally:
            await probe.stop()
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + READ_TOPIC_TIMEOUT_SECONDS
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic} was not read to its end within the deadline")
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, items in batch.items():
                records.extend(item for item in items if item.offset < ends[tp])
        return records
    finally:
        await consumer.stop()


async def publish(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in items]
        for future in futures:
            await future
    finally:
        await producer.stop()


def record_entry_command(
    app: str, owner_id: str, operation: str, nonce: str, command_id: str | None = None
) -> tuple[bytes, bytes]:
    """A `ledger.record_entry.v1` CloudEvent as an outside producer would publish it."""
    value = {
        "specversion": "1.0",
        "id": command_id or secrets.token_hex(16),
        "source": "tests/outside-producer",
        "type": "ledger.record_entry.v1",
        "subject": f"{app}:{owner_id}",
        "time": "2026-11-23T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"app": app, "owner_id": owner_id, "operation": operation, "nonce": nonce},
    }
    return f"{app}:{owner_id}".encode(), orjson.dumps(value)
