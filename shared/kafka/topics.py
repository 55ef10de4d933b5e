"""Topic definitions from `deploy/topics.json`, and creating them on a broker.

Partitions and retention are the file's; replication is the deployment's. One broker can hold
only one copy of a partition, so the file says replication factor 1 and an operator running a
cluster raises it with `LEDGERBUS_TOPIC_REPLICATION_FACTOR` (and, for `acks=all` to mean "on
at least N brokers", `LEDGERBUS_TOPIC_MIN_INSYNC_REPLICAS`) without editing the file.
"""

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPIC_DEFINITIONS_PATH = Path(__file__).resolve().parents[2] / "deploy" / "topics.json"
ADMIN_REQUEST_TIMEOUT_MILLISECONDS = 15_000
TOPIC_ALREADY_EXISTS_ERROR_CODE = 36

REPLICATION_FACTOR_VARIABLE = "LEDGERBUS_TOPIC_REPLICATION_FACTOR"
"""Overrides every topic's replication factor (copies of each partition, one per broker)."""
MIN_INSYNC_REPLICAS_VARIABLE = "LEDGERBUS_TOPIC_MIN_INSYNC_REPLICAS"
"""When set, every topic gets `min.insync.replicas`; unset or empty keeps the broker default."""
MIN_INSYNC_REPLICAS_CONFIG = "min.insync.replicas"
REPLICAS_MINIMUM = 1
"""A partition needs at least one copy, and `acks=all` at least one in-sync copy."""


class TopicConfigurationError(ValueError):
    """The definitions file or a replication variable asks for something Kafka cannot do."""


@dataclass(frozen=True, slots=True)
class TopicDefinition:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplicationOverrides:
    """What the environment says about replication; None means "as the file or broker says"."""

    replication_factor: int | None
    min_insync_replicas: int | None


def dead_letter_topic(topic: str) -> str:
    """Every consumed topic has `<topic>.dlq` beside it."""
    return f"{topic}.dlq"


def replication_overrides(environment: Mapping[str, str]) -> ReplicationOverrides:
    """Read both replication variables, refusing anything that is not a count of replicas.

    An empty value counts as unset because compose passes an unset variable through as "".
    """
    return ReplicationOverrides(
        replication_factor=_replica_count(environment, REPLICATION_FACTOR_VARIABLE),
        min_insync_replicas=_replica_count(environment, MIN_INSYNC_REPLICAS_VARIABLE),
    )


def _replica_count(environment: Mapping[str, str], variable: str) -> int | None:
    raw = environment.get(variable, "").strip()
    if not raw:
        return None
    try:
        count = int(raw)
    except ValueError:
        raise TopicConfigurationError(
            f"{variable}={raw!r} is not a whole number of replicas."
        ) from None
    if count < REPLICAS_MINIMUM:
        raise TopicConfigurationError(
            f"{variable}={count} is below {REPLICAS_MINIMUM}: every partition needs at least"
            f" {REPLICAS_MINIMUM} replica."
        )
    return count


def load_definitions(
    path: Path = TOPIC_DEFINITIONS_PATH, environment: Mapping[str, str] = os.environ
) -> list[TopicDefinition]:
    """The topics of the definitions file, with the environment's replication applied.

    `environment` defaults to the process environment so `ledgerbus topics create` honours the
    variables without any change to its callers; tests pass a mapping of their own.
    """
    overrides = replication_overrides(environment)
    document = json.loads(path.read_text())
    defaults = document["defaults"]
    definitions = []
    for entry in document["topics"]:
        config = {**defaults.get("config", {}), **entry.get("config", {})}
        if config.get("cleanup.policy", "delete") != "delete":
            raise ValueError(f"{entry['name']}: the log is the source of truth; never compact it")
        replication_factor = int(entry.get("replication_factor", defaults["replication_factor"]))
        if overrides.replication_factor is not None:
            replication_factor = overrides.replication_factor
        if overrides.min_insync_replicas is not None:
            config[MIN_INSYNC_REPLICAS_CONFIG] = str(overrides.min_insync_replicas)
        definition = TopicDefinition(
            name=entry["name"],
            partitions=int(entry.get("partitions", defaults["partitions"])),
            replication_factor=replication_factor,
            config=config,
        )
        check_replication(definition, overrides, path)
        definitions.append(definition)
    return definitions


def check_replication(
    definition: TopicDefinition, overrides: ReplicationOverrides, path: Path
) -> None:
    """Refuse a replication Kafka would refuse later, naming whichever setting is to blame.

    With `min.insync.replicas` above the replication factor every `acks=all` write would fail
    with NotEnoughReplicas forever, so it is refused here instead of at the first write.
    """
    if definition.replication_factor < REPLICAS_MINIMUM:
        raise TopicConfigurationError(
            f"{path.name}: {definition.name} has replication factor"
            f" {definition.replication_factor}; it must be at least {REPLICAS_MINIMUM}."
        )
    raw_minimum = definition.config.get(MIN_INSYNC_REPLICAS_CONFIG)
    if raw_minimum is None:
        return
    if overrides.min_insync_replicas is not None:
        source = f"{MIN_INSYNC_REPLICAS_VARIABLE}={raw_minimum}"
    else:
        source = f"{path.name}: {definition.name} {MIN_INSYNC_REPLICAS_CONFIG}={raw_minimum!r}"
    try:
        minimum = int(raw_minimum)
    except ValueError:
        raise TopicConfigurationError(f"{source} is not a whole number of replicas.") from None
    if minimum < REPLICAS_MINIMUM:
        raise TopicConfigurationError(f"{source} is below {REPLICAS_MINIMUM}.")
    if minimum > definition.replication_factor:
        factor_source = (
            REPLICATION_FACTOR_VARIABLE if overrides.replication_factor is not None else path.name
        )
        raise TopicConfigurationError(
            f"{source} exceeds the replication factor {definition.replication_factor} of"
            f" {definition.name} (from {factor_source}): no acks=all write could ever succeed."
            f" Raise {REPLICATION_FACTOR_VARIABLE} or lower {MIN_INSYNC_REPLICAS_VARIABLE}."
        )


async def create_topics(
    bootstrap_servers: str, definitions: Sequence[TopicDefinition], prefix: str = ""
) -> list[str]:
    """Create the missing topics; returns the names created. Existing topics are left alone.

    Left alone includes their replication: raising it on a live topic is a partition
    reassignment (`kafka-reassign-partitions.sh`), which this command does not do.
    """
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
