"""Replay on the real broker: catching up in steps, and auditing a log that contradicts itself."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from bench import workloads
from ledgerbus.operations import migrate_all
from services.ledger.projections.audit import run_audit
from services.ledger.projections.ledger_view import ENTRIES, LEDGER_PROJECTIONS
from shared.engine.replay import Replayer
from shared.engine.tables import Table
from shared.infra.provision import Infrastructure
from shared.kafka.topics import TopicDefinition, create_topics
from shared.settings import PlatformSettings
from tests.support.stacks import create_database, publish

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
EVENTS = 300


@dataclass(frozen=True)
class Log:
    bootstrap: str
    dsn: str
    prefix: str

    @property
    def topic(self) -> str:
        return f"{self.prefix}ledger.events"


@pytest_asyncio.fixture(loop_scope="session")
async def log(infrastructure: Infrastructure) -> AsyncIterator[Log]:
    prefix = f"replay-{uuid.uuid4().hex[:8]}."
    bootstrap = infrastructure.kafka_bootstrap_servers
    await create_topics(
        bootstrap,
        [TopicDefinition(f"{prefix}ledger.events", 1, 1),
         TopicDefinition(f"{prefix}ledger.commands", 1, 1)],
    )  # fmt: skip
    dsn = await create_database(infrastructure.database_url)
    await migrate_all(dsn)
    yield Log(bootstrap, dsn, prefix)


async def test_a_replay_that_stopped_at_a_target_continues_without_losing_records(log: Log) -> None:
    await publish(log.bootstrap, log.topic, workloads.events(EVENTS, "steps"))
    replayer = Replayer(log.bootstrap, log.topic, LEDGER_PROJECTIONS)
    ends = await replayer.start()
    folded: list[Any] = []

    def keep(table: Table, rows: list[Any]) -> None:
        if table is ENTRIES:
            folded.extend(rows)

    try:
        await replayer.advance({0: EVENTS // 3}, keep)
        assert len(folded) == EVENTS // 3
        await replayer.advance({0: ends[0]}, keep)
    finally:
        await replayer.stop()
    assert ends[0] == EVENTS
    assert [row.nonce for row in folded] == [f"steps-{index}" for index in range(EVENTS)]


async def test_an_audit_of_a_log_with_a_missing_event_reports_it(log: Log) -> None:
    # Owner gap-5 gets its sequences 1 and 2 at indexes 5 and 1005 of the workload.
    events = workloads.events(workloads.OWNERS + 6, "gap")
    published = events[:5] + events[6:]  # its sequence 1 never arrives
    await publish(log.bootstrap, log.topic, published)
    connection = await asyncpg.connect(log.dsn)
    try:
        await connection.execute(
            "INSERT INTO ledger.checkpoints (consumer, topic, partition, next_offset)"
            " VALUES ('ledger-projector', $1, 0, $2)",
            log.topic,
            len(published) + EVENTS,  # the first test's events are in this topic too
        )
    finally:
        await connection.close()
    settings = PlatformSettings(
        kafka_bootstrap_servers=log.bootstrap, database_url=log.dsn,
        ledgerbus_topic_prefix=log.prefix,
    )  # fmt: skip
    report = await run_audit(settings, None, lambda _: None, lambda _: None)
    assert not report.matches
    assert any("the log contradicts itself" in violation for violation in report.violations)
