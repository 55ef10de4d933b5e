"""The AsyncAPI document of the public topics, generated from the contract registry.

A spec-only FastStream broker (never started) declares each topic with a typed envelope per
message type, so `/asyncapi` always shows exactly the models the services validate against.
"""

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from faststream.specification.base import Specification

from shared.contracts.registry import MessageKind, MessageRegistry, typed_envelope

DESCRIPTION = (
    "Ledgerbus topics. Every value is a CloudEvents 1.0 envelope in structured JSON mode; the"
    " record key is the aggregate id. Records that fail validation go to `<topic>.dlq` unchanged"
    " with `error_code` and `error_message` headers."
)


def build_asyncapi(topics: list[tuple[str, MessageRegistry]], version: str) -> Specification:
    broker = KafkaBroker("kafka:9092", description="Apache Kafka (KRaft) in production")
    for topic, registry in topics:
        for message_type in registry.all():
            title = f"{topic}:{message_type.name}"
            if message_type.kind is MessageKind.COMMAND:
                # Commands are consumed by the partition owner and published by anyone allowed.
                subscriber = broker.subscriber(
                    topic, title=title, description=message_type.description
                )

                @subscriber
                async def consume(body: typed_envelope(message_type)) -> None:  # type: ignore[valid-type]
                    """Documentation only; this broker never runs."""

            else:
                broker.publisher(
                    topic,
                    title=title,
                    description=message_type.description,
                    schema=typed_envelope(message_type),
                )
    factory = AsyncAPI(broker, title="Ledgerbus", version=version, description=DESCRIPTION)
    return factory.to_specification()
