"""One test body for the gateway's command publisher, run on the in-memory and the real broker."""

from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage

from shared.contracts.envelope import build_envelope
from shared.contracts.ledger import LEDGER_COMMANDS, RECORD_ENTRY_V1, RecordEntry
from shared.contracts.registry import ParsedMessage
from shared.kafka.command_publisher import BrokerCommandPublisher
from tests.support.waiting import eventually

CAPTURE_TIMEOUT_SECONDS = 20.0


def capture(broker: KafkaBroker, topic: str) -> list[tuple[bytes | None, bytes, dict[str, Any]]]:
    """Subscribe to `topic` and keep what arrives: key, raw value and headers."""
    received: list[tuple[bytes | None, bytes, dict[str, Any]]] = []

    @broker.subscriber(topic, auto_offset_reset="earliest")
    async def keep(body: Any, message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)
        received.append((record.key, record.value, message.headers))

    return received


async def publish_and_check(broker: KafkaBroker, topic: str, received: list[Any]) -> None:
    command = RecordEntry(app="healthai", owner_id="alice", operation="CREDIT_ADD", nonce="n1")
    envelope = build_envelope(
        message_type=RECORD_ENTRY_V1, source="tests", subject="healthai:alice", data=command
    )
    await BrokerCommandPublisher(broker).publish(topic, "healthai:alice", envelope)
    await eventually(_now(received), bool, "the command to arrive", CAPTURE_TIMEOUT_SECONDS)
    key, value, headers = received[0]
    assert key == b"healthai:alice"
    assert headers["content-type"] == "application/cloudevents+json"
    parsed = LEDGER_COMMANDS.parse(value)
    assert isinstance(parsed, ParsedMessage)
    assert parsed.data == command and parsed.envelope.id == envelope.id


def _now(received: list[Any]) -> Callable[[], Awaitable[list[Any]]]:
    async def look() -> list[Any]:
        return received

    return look
