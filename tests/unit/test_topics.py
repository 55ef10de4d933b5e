"""Replication is the deployment's: the environment overrides deploy/topics.json, checked early.

A wrong replication setting would otherwise surface only at the broker (a refused topic) or, for
`min.insync.replicas` above the replication factor, as every `acks=all` write failing forever.
"""

import json
import re
from pathlib import Path

import pytest

from shared.kafka.topics import (
    MIN_INSYNC_REPLICAS_CONFIG,
    MIN_INSYNC_REPLICAS_VARIABLE,
    REPLICATION_FACTOR_VARIABLE,
    TOPIC_DEFINITIONS_PATH,
    TopicConfigurationError,
    load_definitions,
    replication_overrides,
)

FILE_REPLICATION_FACTOR = 1
"""What deploy/topics.json says today: one broker holds the only copy."""


def write_definitions(tmp_path: Path, topic: dict[str, object]) -> Path:
    path = tmp_path / "topics.json"
    document = {
        "defaults": {"partitions": 4, "replication_factor": 1, "config": {"retention.ms": "-1"}},
        "topics": [topic],
    }
    path.write_text(json.dumps(document))
    return path


def test_without_variables_the_file_decides() -> None:
    definitions = load_definitions(TOPIC_DEFINITIONS_PATH, environment={})
    assert definitions, "deploy/topics.json defines no topic"
    for definition in definitions:
        assert definition.replication_factor == FILE_REPLICATION_FACTOR, definition.name
        assert MIN_INSYNC_REPLICAS_CONFIG not in definition.config, definition.name
        assert definition.config["retention.ms"] == "-1", definition.name


def test_the_old_call_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ledgerbus topics create` calls `load_definitions(path)`; the variables must still apply."""
    monkeypatch.setenv(REPLICATION_FACTOR_VARIABLE, "3")
    monkeypatch.setenv(MIN_INSYNC_REPLICAS_VARIABLE, "2")
    for definition in load_definitions(TOPIC_DEFINITIONS_PATH):
        assert definition.replication_factor == 3, definition.name
        assert definition.config[MIN_INSYNC_REPLICAS_CONFIG] == "2", definition.name


def test_variables_override_every_topic() -> None:
    environment = {REPLICATION_FACTOR_VARIABLE: "3", MIN_INSYNC_REPLICAS_VARIABLE: "2"}
    definitions = load_definitions(TOPIC_DEFINITIONS_PATH, environment=environment)
    names = {definition.name for definition in definitions}
    assert {"ledger.commands", "ledger.events", "ledger.commands.dlq"} <= names
    for definition in definitions:
        assert definition.replication_factor == 3, definition.name
        assert definition.config[MIN_INSYNC_REPLICAS_CONFIG] == "2", definition.name
        assert definition.config["cleanup.policy"] == "delete", definition.name


def test_replication_alone_keeps_the_broker_default_minimum() -> None:
    environment = {REPLICATION_FACTOR_VARIABLE: "3"}
    for definition in load_definitions(TOPIC_DEFINITIONS_PATH, environment=environment):
        assert definition.replication_factor == 3, definition.name
        assert MIN_INSYNC_REPLICAS_CONFIG not in definition.config, definition.name


def test_empty_values_count_as_unset() -> None:
    """Compose passes `${VARIABLE:-}` through as an empty string."""
    environment = {REPLICATION_FACTOR_VARIABLE: "", MIN_INSYNC_REPLICAS_VARIABLE: "  "}
    overrides = replication_overrides(environment)
    assert overrides.replication_factor is None
    assert overrides.min_insync_replicas is None


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({REPLICATION_FACTOR_VARIABLE: "0"}, REPLICATION_FACTOR_VARIABLE),
        ({REPLICATION_FACTOR_VARIABLE: "-1"}, REPLICATION_FACTOR_VARIABLE),
        ({REPLICATION_FACTOR_VARIABLE: "three"}, REPLICATION_FACTOR_VARIABLE),
        ({REPLICATION_FACTOR_VARIABLE: "2.5"}, REPLICATION_FACTOR_VARIABLE),
        ({MIN_INSYNC_REPLICAS_VARIABLE: "0"}, MIN_INSYNC_REPLICAS_VARIABLE),
        ({MIN_INSYNC_REPLICAS_VARIABLE: "two"}, MIN_INSYNC_REPLICAS_VARIABLE),
        (
            {REPLICATION_FACTOR_VARIABLE: "3", MIN_INSYNC_REPLICAS_VARIABLE: "4"},
            MIN_INSYNC_REPLICAS_VARIABLE,
        ),
        ({MIN_INSYNC_REPLICAS_VARIABLE: "2"}, MIN_INSYNC_REPLICAS_VARIABLE),
    ],
)
def test_nonsense_is_refused_naming_the_variable(environment: dict[str, str], named: str) -> None:
    with pytest.raises(TopicConfigurationError, match=named):
        load_definitions(TOPIC_DEFINITIONS_PATH, environment=environment)


def test_minimum_above_the_file_replication_names_both_settings() -> None:
    """The file's factor 1 with a minimum of 2: the message says what to raise or lower."""
    with pytest.raises(TopicConfigurationError) as refused:
        load_definitions(TOPIC_DEFINITIONS_PATH, environment={MIN_INSYNC_REPLICAS_VARIABLE: "2"})
    message = str(refused.value)
    assert TOPIC_DEFINITIONS_PATH.name in message
    assert REPLICATION_FACTOR_VARIABLE in message


def test_minimum_equal_to_replication_is_allowed() -> None:
    """Allowed, though then one broker down stops writes: the operator's trade-off to make."""
    environment = {REPLICATION_FACTOR_VARIABLE: "3", MIN_INSYNC_REPLICAS_VARIABLE: "3"}
    for definition in load_definitions(TOPIC_DEFINITIONS_PATH, environment=environment):
        assert definition.config[MIN_INSYNC_REPLICAS_CONFIG] == "3", definition.name


def test_a_minimum_in_the_file_is_checked_too(tmp_path: Path) -> None:
    path = write_definitions(
        tmp_path, {"name": "ledger.events", "config": {MIN_INSYNC_REPLICAS_CONFIG: "2"}}
    )
    with pytest.raises(TopicConfigurationError, match=re.escape("ledger.events")):
        load_definitions(path, environment={})
    definitions = load_definitions(path, environment={REPLICATION_FACTOR_VARIABLE: "3"})
    assert definitions[0].config[MIN_INSYNC_REPLICAS_CONFIG] == "2"


def test_a_file_replication_below_one_is_refused(tmp_path: Path) -> None:
    path = write_definitions(tmp_path, {"name": "ledger.events", "replication_factor": 0})
    with pytest.raises(TopicConfigurationError, match=re.escape("ledger.events")):
        load_definitions(path, environment={})


def test_the_variable_outranks_a_per_topic_factor_in_the_file(tmp_path: Path) -> None:
    path = write_definitions(tmp_path, {"name": "ledger.events", "replication_factor": 2})
    assert load_definitions(path, environment={})[0].replication_factor == 2
    overridden = load_definitions(path, environment={REPLICATION_FACTOR_VARIABLE: "3"})
    assert overridden[0].replication_factor == 3


def test_compaction_is_still_refused(tmp_path: Path) -> None:
    path = write_definitions(
        tmp_path, {"name": "ledger.events", "config": {"cleanup.policy": "compact"}}
    )
    with pytest.raises(ValueError, match="never compact"):
        load_definitions(path, environment={REPLICATION_FACTOR_VARIABLE: "3"})
