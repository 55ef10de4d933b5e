"""docker-compose.yml validates offline and keeps the production deployment contract.

`docker-compose config` (Debian's v1 package) checks the file without a Docker engine. The
v2 plugin (`docker compose`) is checked too where it exists. Neither is ever skipped: a
machine without Debian's docker-compose fails with a message to run `make tools`.

The three-broker example (`deploy/compose.kafka-cluster.yml` on top of docker-compose.yml) is
checked as compose merges the two, because merging is where an override goes wrong: a key it
cannot remove, a process it forgot to list.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledgerbus.registry import service_processes
from shared.kafka.topics import (
    MIN_INSYNC_REPLICAS_CONFIG,
    MIN_INSYNC_REPLICAS_VARIABLE,
    REPLICATION_FACTOR_VARIABLE,
    load_definitions,
)
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
EXAMPLE_ENV = ROOT / "deploy" / "example.env"
TOPICS_FILE = ROOT / "deploy" / "topics.json"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
CLUSTER_FILE = ROOT / "deploy" / "compose.kafka-cluster.yml"
SINGLE_BROKER_FILES = (COMPOSE_FILE,)
CLUSTER_FILES = (COMPOSE_FILE, CLUSTER_FILE)

INFRA = ("kafka", "postgres", "redis")
ONE_SHOTS = ("topics", "migrate")
WORKERS = tuple(process.name for process in service_processes())
"""Every process a service descriptor names (services/<name>/service.py)."""
GATEWAY = "gateway"
LONG_RUNNING = (*WORKERS, GATEWAY)
LEDGERBUS_SERVICES = (*ONE_SHOTS, *LONG_RUNNING)

SECRETS = (
    "LEDGERBUS_JWT_SECRET",
    "LEDGERBUS_ADMIN_TOKEN",
    "LEDGERBUS_APP_KEYS",
    "LEDGERBUS_PIN_PEPPER",
)
CONTRACT = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "DATABASE_URL",
    "REDIS_URL",
    "LEDGERBUS_ENV",
    "LEDGERBUS_HTTP_PORT",
    *SECRETS,
)
REQUIRED_VARIABLES = ("POSTGRES_PASSWORD", *SECRETS)
"""Variables the compose file takes with `${VAR:?message}`: no default, refused when unset."""

KAFKA_IMAGE = "apache/kafka:3.9.1"
KAFKA_DATA_DIRECTORY = "/var/lib/kafka/data"
LEDGERBUS_IMAGE_PREFIX = "ledgerbus:"
CLUSTER_NODE_COUNT = 3
CLUSTER_NODE_IDS = {"1", "2", "3"}
CLUSTER_BOOTSTRAP = {"kafka-1:9092", "kafka-2:9092", "kafka-3:9092"}
CLUSTER_REPLICATION_FACTOR = 3
CLUSTER_MIN_INSYNC_REPLICAS = 2
CLUSTER_BROKER_SETTINGS = {
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_DEFAULT_REPLICATION_FACTOR": str(CLUSTER_REPLICATION_FACTOR),
    "KAFKA_MIN_INSYNC_REPLICAS": str(CLUSTER_MIN_INSYNC_REPLICAS),
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": str(CLUSTER_REPLICATION_FACTOR),
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": str(CLUSTER_REPLICATION_FACTOR),
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": str(CLUSTER_MIN_INSYNC_REPLICAS),
    "KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE": "false",
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
}
"""Broker settings every cluster node must carry, as the apache/kafka image's variables."""

MISSING_TOOL = (
    "Debian's `docker-compose` is not installed, so docker-compose.yml cannot be validated. "
    "Run `make tools` (it apt-installs docker-compose), then run the tests again."
)

YAML_TO_JSON = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"

Config = dict[str, Any]


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class ComposeTool:
    """One implementation of `compose config`: argv prefix and how its output is read."""

    name: str
    argv: tuple[str, ...]
    emits_json: bool

    def run(
        self,
        *args: str,
        env_file: Path,
        env: Mapping[str, str] | None = None,
        files: tuple[Path, ...] = SINGLE_BROKER_FILES,
    ) -> Result:
        """Run the tool on `files`, merged in order as `-f one -f two` merges them."""
        file_arguments = [argument for path in files for argument in ("--file", str(path))]
        command = [
            *self.argv,
            *file_arguments,
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(env_file),
            *args,
        ]
        completed = subprocess.run(
            command,
            cwd=ROOT,
            env=dict(env) if env is not None else clean_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def config(self, files: tuple[Path, ...] = SINGLE_BROKER_FILES) -> Config:
        args = ("config", "--format", "json") if self.emits_json else ("config",)
        result = self.run(*args, env_file=EXAMPLE_ENV, files=files)
        assert result.returncode == 0, f"{self.name} config failed:\n{result.stderr}"
        if self.emits_json:
            return as_mapping(json.loads(result.stdout))
        return load_yaml(result.stdout, self.argv[0])


def require_docker_compose() -> ComposeTool:
    """Debian's docker-compose (v1), or a test failure telling the developer what to run."""
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(MISSING_TOOL, pytrace=False)
    return ComposeTool("docker-compose", (path,), emits_json=False)


def docker_compose_plugin() -> ComposeTool | None:
    """The v2 plugin `docker compose`, where it exists (optional: v1 is the one relied on)."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        probe = subprocess.run(
            [docker, "compose", "version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0:
        return None
    return ComposeTool("docker compose", (docker, "compose"), emits_json=True)


def compose_tools() -> list[ComposeTool]:
    tools = [require_docker_compose()]
    plugin = docker_compose_plugin()
    if plugin is not None:
        tools.append(plugin)
    return tools


def clean_environment() -> dict[str, str]:
    """The caller's environment less anything that would override the env file or the file."""
    ignored_prefixes = ("LEDGERBUS_", "POSTGRES_", "COMPOSE_", "KAFKA_")
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(ignored_prefixes)
        and name not in CONTRACT
        and name not in {"DATABASE_URL", "REDIS_URL"}
    }


def load_yaml(text: str, compose_executable: str) -> Config:
    """Parse compose's YAML output with PyYAML, from this venv or from docker-compose's Python.

    Debian's docker-compose is a Python script that depends on python3-yaml, so its own
    interpreter can always read what it printed even when this venv has no PyYAML.
    """
    try:
        yaml = importlib.import_module("yaml")
    except ModuleNotFoundError:
        interpreter = script_interpreter(compose_executable)
        if interpreter is None:
            pytest.fail(
                "Cannot parse `docker-compose config` output: this venv has no PyYAML and "
                f"{compose_executable} is not a Python script. Run `make tools`.",
                pytrace=False,
            )
        converted = subprocess.run(
            [*interpreter, "-c", YAML_TO_JSON],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert converted.returncode == 0, converted.stderr
        return as_mapping(json.loads(converted.stdout))
    return as_mapping(yaml.safe_load(text))


def script_interpreter(executable: str) -> list[str] | None:
    """The `#!` line of a Python script, split into argv; None for anything else."""
    try:
        with Path(executable).resolve().open("rb") as script:
            first_line = script.readline(256).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first_line.startswith("#!") or "python" not in first_line:
        return None
    return first_line[2:].split()


def as_mapping(value: object) -> Config:
    assert isinstance(value, dict), f"expected a mapping, got {type(value).__name__}"
    return value


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        assert separator, f"{path.name}: {raw!r} is not NAME=value"
        values[name.strip()] = value.strip()
    return values


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment, whether compose printed it as a mapping or as a list."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.partition("=")[::2] for item in raw)
    return {name: "" if value is None else str(value) for name, value in raw.items()}


def named_volumes_at(service: Mapping[str, Any], target: str) -> set[str]:
    """Sources of the volumes a service mounts at `target`, in short or long syntax."""
    mounts = service.get("volumes") or []
    sources = {
        (mount["source"], mount["target"])
        if isinstance(mount, dict)
        else tuple(str(mount).split(":")[:2])
        for mount in mounts
    }
    return {source for source, mounted in sources if mounted == target}


def network_names(name: str, service: Mapping[str, Any]) -> set[str]:
    """The host names a service answers to on its networks: its own and its aliases."""
    names = {name}
    networks = service.get("networks") or {}
    if isinstance(networks, dict):
        for network in networks.values():
            names.update((network or {}).get("aliases") or [])
    return names


def kafka_nodes(config: Config) -> dict[str, Mapping[str, Any]]:
    return {
        name: service
        for name, service in config["services"].items()
        if str(service.get("image", "")).startswith("apache/kafka")
    }


def ledgerbus_processes(config: Config) -> dict[str, Mapping[str, Any]]:
    """Every service running the Ledgerbus image, including any the override forgot to list."""
    return {
        name: service
        for name, service in config["services"].items()
        if str(service.get("image", "")).startswith(LEDGERBUS_IMAGE_PREFIX)
    }


def kafka_node_by_host(config: Config) -> dict[str, str]:
    """Host name to the Kafka service answering to it."""
    return {
        host: name
        for name, service in kafka_nodes(config).items()
        for host in network_names(name, service)
    }


def host_of(address: str) -> str:
    """`kafka-1` of `kafka-1:9092`, or of `PLAINTEXT://kafka-1:9092`."""
    return address.rpartition("//")[2].rpartition(":")[0]


def healthcheck_command(service: Mapping[str, Any]) -> str:
    check = service.get("healthcheck") or {}
    assert not check.get("disable"), "healthcheck is disabled"
    test = check.get("test")
    assert test, "no healthcheck test"
    return " ".join(test) if isinstance(test, list) else str(test)


@pytest.fixture(scope="module")
def tools() -> list[ComposeTool]:
    return compose_tools()


@pytest.fixture(scope="module")
def configs(tools: list[ComposeTool]) -> dict[str, Config]:
    """The resolved configuration as each available tool prints it, with the example env."""
    return {tool.name: tool.config() for tool in tools}


@pytest.fixture(scope="module")
def cluster_configs(tools: list[ComposeTool]) -> dict[str, Config]:
    """docker-compose.yml merged with the three-broker override, as each tool prints it."""
    return {tool.name: tool.config(CLUSTER_FILES) for tool in tools}


def each_service(
    configs: Mapping[str, Config], names: tuple[str, ...]
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for tool, config in configs.items():
        services = config["services"]
        for name in names:
            assert name in services, f"{tool}: service {name!r} is missing"
            yield tool, name, services[name]


def test_missing_tool_fails_with_make_tools_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(pytest.fail.Exception, match="make tools"):
        require_docker_compose()


def test_config_validates_with_example_env(tools: list[ComposeTool]) -> None:
    for tool in tools:
        result = tool.run("config", "--quiet", env_file=EXAMPLE_ENV)
        assert result.returncode == 0, f"{tool.name} config failed:\n{result.stderr}"


def test_expected_services_exist(tools: list[ComposeTool], configs: dict[str, Config]) -> None:
    expected = {*INFRA, *LEDGERBUS_SERVICES}
    for tool in tools:
        result = tool.run("config", "--services", env_file=EXAMPLE_ENV)
        assert result.returncode == 0, result.stderr
        assert expected <= set(result.stdout.split()), f"{tool.name}: {result.stdout}"
    for tool_name, config in configs.items():
        assert expected <= set(config["services"]), tool_name


def test_every_process_a_descriptor_names_runs_in_its_own_container(
    configs: dict[str, Config], cluster_configs: dict[str, Config]
) -> None:
    """Adding a service to services/ is incomplete until production runs its processes."""
    assert WORKERS, "the registry finds the services' descriptors"
    for label, shape in (("single broker", configs), ("three brokers", cluster_configs)):
        for tool_name, config in shape.items():
            commands = {
                name: service.get("command") for name, service in config["services"].items()
            }
            for process in WORKERS:
                assert commands.get(process) == ["run", process], (label, tool_name, process)


def test_ledgerbus_services_share_one_image(configs: dict[str, Config]) -> None:
    images = set()
    for tool, name, service in each_service(configs, LEDGERBUS_SERVICES):
        build = service.get("build")
        assert isinstance(build, dict), f"{tool}: {name} does not build the image"
        assert Path(build["context"]).resolve() == ROOT, f"{tool}: {name} context"
        assert build.get("dockerfile") == "deploy/Dockerfile", f"{tool}: {name} dockerfile"
        images.add(service.get("image"))
    assert len(images) == 1, f"ledgerbus services use several images: {images}"
    assert DOCKERFILE.is_file()


def test_infra_is_pinned_and_has_healthchecks(configs: dict[str, Config]) -> None:
    probes = {"kafka": "kafka-", "postgres": "pg_isready", "redis": "redis-cli ping"}
    images = {"kafka": "apache/kafka:3.", "postgres": "postgres:16", "redis": "redis:7"}
    for tool, name, service in each_service(configs, INFRA):
        assert str(service["image"]).startswith(images[name]), f"{tool}: {name} image"
        assert probes[name] in healthcheck_command(service), f"{tool}: {name} healthcheck"


def test_kafka_and_postgres_keep_data_in_named_volumes(configs: dict[str, Config]) -> None:
    data_dirs = {"kafka": KAFKA_DATA_DIRECTORY, "postgres": "/var/lib/postgresql/data"}
    for tool, config in configs.items():
        declared = set(config.get("volumes") or {})
        for name, target in data_dirs.items():
            named = named_volumes_at(config["services"][name], target)
            assert named, f"{tool}: {name} has no volume at {target}"
            assert named <= declared, f"{tool}: {name} volume {named} is not a named volume"


def test_long_running_services_have_healthchecks(configs: dict[str, Config]) -> None:
    for tool, name, service in each_service(configs, LONG_RUNNING):
        command = healthcheck_command(service)
        assert "urllib" in command, f"{tool}: {name} healthcheck should use python's urllib"
        assert "curl" not in command, f"{tool}: {name}: slim images have no curl"
        port = "8000" if name == GATEWAY else "9100"
        assert f"http://127.0.0.1:{port}/health" in command, f"{tool}: {name} health URL"
        assert service.get("restart") == "unless-stopped", f"{tool}: {name} restart"


def test_ledgerbus_services_wait_for_healthy_infra(configs: dict[str, Config]) -> None:
    for tool, name, service in each_service(configs, LEDGERBUS_SERVICES):
        depends_on = service.get("depends_on")
        assert isinstance(depends_on, dict), f"{tool}: {name} depends_on has no conditions"
        for infra in INFRA:
            condition = (depends_on.get(infra) or {}).get("condition")
            assert condition == "service_healthy", f"{tool}: {name} -> {infra}: {condition}"


def test_long_running_services_wait_for_the_one_shots(configs: dict[str, Config]) -> None:
    for tool, name, service in each_service(configs, LONG_RUNNING):
        for one_shot in ONE_SHOTS:
            condition = (service["depends_on"].get(one_shot) or {}).get("condition")
            assert condition == "service_completed_successfully", (
                f"{tool}: {name} -> {one_shot}: {condition}"
            )


def test_one_shots_run_once(configs: dict[str, Config]) -> None:
    commands = {
        "topics": ["topics", "create", "--definitions", "/app/deploy/topics.json"],
        "migrate": ["migrate"],
    }
    for tool, name, service in each_service(configs, ONE_SHOTS):
        assert service["command"] == commands[name], f"{tool}: {name} command"
        assert service.get("restart") in ("no", None), f"{tool}: {name} must not restart"
        assert set(service["depends_on"]) <= set(INFRA), f"{tool}: {name} waits on services"


def test_processes_run_their_service(configs: dict[str, Config]) -> None:
    for tool, name, service in each_service(configs, LONG_RUNNING):
        assert service["command"] == ["run", name], f"{tool}: {name} command"


def test_environment_is_the_production_contract(configs: dict[str, Config]) -> None:
    for tool, name, service in each_service(configs, LEDGERBUS_SERVICES):
        env = environment_of(service)
        missing = [variable for variable in CONTRACT if not env.get(variable)]
        assert not missing, f"{tool}: {name} lacks {missing}"
        assert env["LEDGERBUS_ENV"] == "production", f"{tool}: {name}"
        assert env["LEDGERBUS_HTTP_PORT"] == "8000", f"{tool}: {name}"
        assert env["DATABASE_URL"].startswith("postgresql://"), f"{tool}: {name} DATABASE_URL"
        assert "@postgres:5432/" in env["DATABASE_URL"], f"{tool}: {name} DATABASE_URL"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", f"{tool}: {name}"
        assert env["REDIS_URL"].startswith("redis://redis:6379"), f"{tool}: {name}"
        if name in WORKERS:
            assert env.get("LEDGERBUS_OPS_PORT") == "9100", f"{tool}: {name} ops port"


def test_gateway_listens_on_all_interfaces_and_publishes_8000(
    configs: dict[str, Config],
) -> None:
    for tool, _name, service in each_service(configs, (GATEWAY,)):
        assert environment_of(service).get("LEDGERBUS_HTTP_HOST") == "0.0.0.0", tool
        published = {
            (str(port["published"]), str(port["target"]))
            if isinstance(port, dict)
            else tuple(str(port).rsplit(":", 2)[-2:])
            for port in service.get("ports") or []
        }
        assert ("8000", "8000") in published, f"{tool}: gateway ports {published}"


@pytest.mark.parametrize("variable", REQUIRED_VARIABLES)
def test_unset_secret_is_refused(tools: list[ComposeTool], tmp_path: Path, variable: str) -> None:
    values = read_env_file(EXAMPLE_ENV)
    values.pop(variable)
    env_file = tmp_path / "partial.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    for tool in tools:
        result = tool.run("config", "--quiet", env_file=env_file)
        assert result.returncode != 0, f"{tool.name} accepted an unset {variable}"
        assert variable in result.stderr, f"{tool.name}: {result.stderr}"


def test_example_env_passes_the_production_secret_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = read_env_file(EXAMPLE_ENV)
    assert set(REQUIRED_VARIABLES) <= set(values), "example.env lacks a required variable"
    assert "change" in EXAMPLE_ENV.read_text().lower(), "example.env must say to change them"
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LEDGERBUS_ENV", "production")
    settings = load_settings()
    assert settings.is_production


def test_topic_definitions_are_never_compacted() -> None:
    definitions = json.loads(TOPICS_FILE.read_text())
    defaults = definitions["defaults"]
    assert defaults["partitions"] == 4
    assert defaults["replication_factor"] == 1
    assert defaults["config"]["retention.ms"] == "-1"
    assert defaults["config"]["cleanup.policy"] == "delete"
    for topic in definitions["topics"]:
        policy = topic.get("config", {}).get("cleanup.policy", "delete")
        assert "compact" not in policy, f"{topic['name']} is compacted"


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".ledgerbus", ".git"} <= ignored


def test_single_broker_topics_keep_one_copy(configs: dict[str, Config]) -> None:
    """Defaults 1 and unset: the one-shot creates what deploy/topics.json says."""
    for tool, _name, service in each_service(configs, ("topics",)):
        env = environment_of(service)
        assert env.get(REPLICATION_FACTOR_VARIABLE) == "1", tool
        assert env.get(MIN_INSYNC_REPLICAS_VARIABLE) == "", tool
        for definition in load_definitions(TOPICS_FILE, environment=env):
            assert definition.replication_factor == 1, f"{tool}: {definition.name}"
            assert MIN_INSYNC_REPLICAS_CONFIG not in definition.config, definition.name


def test_single_broker_keeps_unclean_leader_election_off(configs: dict[str, Config]) -> None:
    for tool, _name, service in each_service(configs, ("kafka",)):
        env = environment_of(service)
        assert env.get("KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE") == "false", tool


def test_cluster_config_validates_with_example_env(tools: list[ComposeTool]) -> None:
    for tool in tools:
        result = tool.run("config", "--quiet", env_file=EXAMPLE_ENV, files=CLUSTER_FILES)
        assert result.returncode == 0, f"{tool.name} cluster config failed:\n{result.stderr}"


def test_cluster_runs_three_kraft_nodes(cluster_configs: dict[str, Config]) -> None:
    for tool, config in cluster_configs.items():
        nodes = kafka_nodes(config)
        assert len(nodes) == CLUSTER_NODE_COUNT, f"{tool}: kafka nodes {sorted(nodes)}"
        environments = {name: environment_of(service) for name, service in nodes.items()}
        node_ids = [env.get("KAFKA_NODE_ID") for env in environments.values()]
        assert set(node_ids) == CLUSTER_NODE_IDS, f"{tool}: node ids {node_ids}"
        for name, service in nodes.items():
            assert service["image"] == KAFKA_IMAGE, f"{tool}: {name} image"
            assert "kafka-broker-api-versions" in healthcheck_command(service), f"{tool}: {name}"
            assert service.get("restart") == "unless-stopped", f"{tool}: {name} restart"
            env = environments[name]
            for setting, value in CLUSTER_BROKER_SETTINGS.items():
                assert env.get(setting) == value, f"{tool}: {name} {setting}={env.get(setting)}"
        cluster_ids = {env.get("CLUSTER_ID") for env in environments.values()}
        assert len(cluster_ids) == 1, f"{tool}: nodes disagree on the cluster id {cluster_ids}"


def test_cluster_voters_name_every_node(cluster_configs: dict[str, Config]) -> None:
    for tool, config in cluster_configs.items():
        nodes = kafka_nodes(config)
        by_host = kafka_node_by_host(config)
        voter_lists = {
            environment_of(node)["KAFKA_CONTROLLER_QUORUM_VOTERS"] for node in nodes.values()
        }
        assert len(voter_lists) == 1, f"{tool}: nodes disagree on the voters {voter_lists}"
        voters = dict(voter.split("@") for voter in voter_lists.pop().split(","))
        assert set(voters) == CLUSTER_NODE_IDS, f"{tool}: voters {voters}"
        for node_id, address in voters.items():
            owner = by_host.get(host_of(address))
            assert owner is not None, f"{tool}: voter {node_id}@{address} is no kafka service"
            env = environment_of(nodes[owner])
            assert env["KAFKA_NODE_ID"] == node_id, f"{tool}: {address} is not node {node_id}"
            advertised = host_of(env["KAFKA_ADVERTISED_LISTENERS"])
            assert advertised == host_of(address), f"{tool}: {owner} advertises {advertised}"


def test_cluster_nodes_keep_data_in_their_own_volumes(cluster_configs: dict[str, Config]) -> None:
    for tool, config in cluster_configs.items():
        declared = set(config.get("volumes") or {})
        owners: dict[str, str] = {}
        for name, service in kafka_nodes(config).items():
            named = named_volumes_at(service, KAFKA_DATA_DIRECTORY)
            assert len(named) == 1, f"{tool}: {name} volumes at {KAFKA_DATA_DIRECTORY}: {named}"
            volume = named.pop()
            assert volume in declared, f"{tool}: {name} volume {volume} is not a named volume"
            assert volume not in owners, f"{tool}: {name} shares {volume} with {owners[volume]}"
            owners[volume] = name
        assert "kafka-data" not in owners, f"{tool}: the single broker's volume is reused"


def test_cluster_processes_reach_every_broker(cluster_configs: dict[str, Config]) -> None:
    for tool, config in cluster_configs.items():
        processes = ledgerbus_processes(config)
        assert set(LEDGERBUS_SERVICES) <= set(processes), f"{tool}: {sorted(processes)}"
        by_host = kafka_node_by_host(config)
        nodes = set(kafka_nodes(config))
        for name, service in processes.items():
            bootstrap = environment_of(service)["KAFKA_BOOTSTRAP_SERVERS"].split(",")
            assert len(bootstrap) == len(set(bootstrap)), f"{tool}: {name} repeats a broker"
            assert set(bootstrap) == CLUSTER_BOOTSTRAP, f"{tool}: {name} bootstrap {bootstrap}"
            reached = {by_host.get(host_of(address)) for address in bootstrap}
            assert reached == nodes, f"{tool}: {name} reaches {reached}, not {nodes}"
            depends_on = service["depends_on"]
            for node in nodes:
                condition = (depends_on.get(node) or {}).get("condition")
                assert condition == "service_healthy", f"{tool}: {name} -> {node}: {condition}"


def test_cluster_topics_one_shot_replicates_three_ways(
    cluster_configs: dict[str, Config],
) -> None:
    """The values reach the one-shot, and the one-shot's loader turns them into topics."""
    for tool, _name, service in each_service(cluster_configs, ("topics",)):
        env = environment_of(service)
        assert env.get(REPLICATION_FACTOR_VARIABLE) == str(CLUSTER_REPLICATION_FACTOR), tool
        assert env.get(MIN_INSYNC_REPLICAS_VARIABLE) == str(CLUSTER_MIN_INSYNC_REPLICAS), tool
        assert service["command"] == [
            "topics",
            "create",
            "--definitions",
            "/app/deploy/topics.json",
        ]
        for definition in load_definitions(TOPICS_FILE, environment=env):
            assert definition.replication_factor == CLUSTER_REPLICATION_FACTOR, definition.name
            minimum = definition.config[MIN_INSYNC_REPLICAS_CONFIG]
            assert minimum == str(CLUSTER_MIN_INSYNC_REPLICAS), definition.name


def test_cluster_keeps_the_rest_of_the_contract(cluster_configs: dict[str, Config]) -> None:
    """The override changes where Kafka is, nothing else a process reads or waits for."""
    for tool, name, service in each_service(cluster_configs, LEDGERBUS_SERVICES):
        env = environment_of(service)
        missing = [variable for variable in CONTRACT if not env.get(variable)]
        assert not missing, f"{tool}: {name} lacks {missing}"
        assert env["LEDGERBUS_ENV"] == "production", f"{tool}: {name}"
        for infra in ("postgres", "redis"):
            condition = (service["depends_on"].get(infra) or {}).get("condition")
            assert condition == "service_healthy", f"{tool}: {name} -> {infra}: {condition}"
