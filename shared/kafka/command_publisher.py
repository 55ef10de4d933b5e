"""How the gateway appends a command to the log: through FastStream's broker, `acks=all`.

The gateway never decides; it publishes the command and waits for the partition owner's answer.
"""

from typing import Protocol

from faststream.kafka import KafkaBroker

from shared.contracts.envelope import CLOUDEVENTS_CONTENT_TYPE, CloudEvent, encode_envelope

REPLY_HEADER = "ledgerbus-reply"
"""Set by the gateway on commands it waits for: only those get a NOTIFY with their answer."""
REPLY_BY_NOTIFY = "notify"


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
            headers={"content-type": CLOUDEVENTS_CONTENT_TYPE, REPLY_HEADER: REPLY_BY_NOTIFY},
            correlation_id=envelope.correlationid or envelope.id,
        )
