"""The gateway's command publisher on FastStream's in-memory broker (see the integration twin)."""

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from tests.support.publisher_contract import capture, publish_and_check

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_command_is_a_cloudevent_keyed_by_its_aggregate() -> None:
    broker = KafkaBroker("localhost:9092")
    received = capture(broker, "ledger.commands")
    async with TestKafkaBroker(broker):
        await publish_and_check(broker, "ledger.commands", received)
