"""The gateway's command publisher on the real broker: the same test as the in-memory one."""

import uuid

import pytest
from faststream.kafka import KafkaBroker

from shared.infra.provision import Infrastructure
from shared.kafka.topics import TopicDefinition, create_topics
from tests.support.publisher_contract import capture, publish_and_check

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_a_command_is_a_cloudevent_keyed_by_its_aggregate(
    infrastructure: Infrastructure,
) -> None:
    topic = f"publisher-{uuid.uuid4().hex[:8]}.ledger.commands"
    await create_topics(infrastructure.kafka_bootstrap_servers, [TopicDefinition(topic, 4, 1)])
    broker = KafkaBroker(infrastructure.kafka_bootstrap_servers)
    received = capture(broker, topic)
    await broker.start()
    try:
        await publish_and_check(broker, topic, received)
    finally:
        await broker.stop()
