"""Topic definitions from `deploy/topics.json`, and creating them on a broker."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPIC_DEFINITIONS_PATH = Path(__file__).resolve().parents[2] / "deploy" / "topics.json"
ADMIN_REQUEST_TIMEOUT_MILLISECONDS = 15_000
TOPIC_ALREADY_EXISTS_ERROR_CODE = 36


@dataclass(frozen=True, slots=True)
class TopicDefinition:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


def dead_letter_topic(topic: str) -> str:
    """Every consumed topic has `<topic>.dlq` beside it."""
    return f"{topic}.dlq"


def load_definitions(path: Path = TOPIC_DEFINITIONS_PATH) -> list[TopicDefinition]:
    document = json.loads(path.read_text())
    defaults = document["defaults"]
    definitions = []
    for entry in document["topics"]:
        config = {**defaults.get("config", {}), **entry.get("config", {})}
        if config.get("cleanup.policy", "delete") != "delete":
            raise ValueError(f"{entry['name']}: the log is the source of truth; never compact it")
        definitions.append(
            TopicDefinition(
                name=entry["name"],
                partitions=int(entry.get("partitions", defaults["partitions"])),
                replication_factor=int(
                    entry.get("replication_factor", defaults["replication_factor"])
                ),
                config=config,
            )
        )
    return definitions


async def create_topics(
    bootstrap_servers: str, definitions: Sequence[TopicDefinition], prefix: str = ""
) -> list[str]:
    """Create the missing topics; returns the names created. Existing topics are left alone."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=ADMIN_REQUEST_TIMEOUT_MILLISECONDS
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name=f"{prefix}{definition.name}",
                    num_partitions=definition.partitions,
                    replication_factor=definition.replication_factor,
                    topic_configs=dict(definition.config),
                )
                for definition in definitions
            ]
        )
    finally:
        await admin.close()
    created = []
    for topic, error_code, error_message in response.topic_errors:
        if error_code == 0:
            created.append(topic)
        elif error_code != TOPIC_ALREADY_EXISTS_ERROR_CODE:
            raise RuntimeError(f"could not create topic {topic}: {error_message} ({error_code})")
    return created
