"""The log-end probe shared by many requests at once (the gateway keeps one): while it assigns
some partitions to read their last batch, another call still sees every partition of another
topic. Its own metadata narrows to what it is assigned, so a concurrent call once saw no
partition at all and a write's own position was refused as never written (a black-box probe
found it under readiness checks)."""

import asyncio
import uuid

import pytest

from shared.infra.provision import Infrastructure
from shared.kafka.log_end import LogEndProbe
from shared.kafka.topics import TopicDefinition, create_topics
from tests.support.stacks import publish

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
PARTITIONS = 4
ROUNDS = 40


async def test_concurrent_calls_each_see_every_partition(infrastructure: Infrastructure) -> None:
    bootstrap = infrastructure.kafka_bootstrap_servers
    first, second = (f"probe-{uuid.uuid4().hex[:8]}.{name}" for name in ("a", "b"))
    await create_topics(bootstrap, [TopicDefinition(first, PARTITIONS, 1),
                                    TopicDefinition(second, PARTITIONS, 1)])  # fmt: skip
    for topic in (first, second):
        await publish(bootstrap, topic, [(f"k{n}".encode(), b"{}") for n in range(40)])
    probe = LogEndProbe(bootstrap, client_id="probe-test")
    await probe.start()
    results: list[dict[int, int]] = []

    async def keep_reading(topic: str) -> None:
        for _ in range(ROUNDS):
            results.append(await probe.topic_end_offsets(topic))
            await asyncio.sleep(0.01)  # let the other reader in between

    try:
        await asyncio.gather(keep_reading(first), keep_reading(second), keep_reading(first))
    finally:
        await probe.stop()
    assert all(sorted(ends) == list(range(PARTITIONS)) for ends in results), results
    assert all(sum(ends.values()) == 40 for ends in results), results
