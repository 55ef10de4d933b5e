"""How the gateway appends a command to the log: through FastStream's broker, `acks=all`.

The gateway never decides; it publishes the command and waits for the processor's reply.
"""

from typing import Protocol

from faststream.kafka import KafkaBroker

from shared.contracts.envelope import CLOUDEVENTS_CONTENT_TYPE, CloudEvent, encode_envelope
from shared.engine.messages import CONTENT_TYPE_HEADER, NOTIFY_HEADER, NOTIFY_HEADER_VALUE


class CommandPublisher(Protocol):
    async def publish(self, topic: str, key: str, envelope: CloudEvent) -> None: ...


class BrokerCommandPublisher:
    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(self, topic: str, key: str, envelope: CloudEvent) -> None:
        """Returns once the broker acknowledged the record; raises when it could not."""
        await self._broker.publish(
            encode_envelope(envelope),
            topic,
            key=key.encode(),
            headers={
                CONTENT_TYPE_HEADER: CLOUDEVENTS_CONTENT_TYPE,
                NOTIFY_HEADER: NOTIFY_HEADER_VALUE.decode(),
            },
            correlation_id=envelope.correlationid or envelope.id,
        )
