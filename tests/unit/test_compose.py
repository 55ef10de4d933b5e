"""docker-compose.yml validates offline and keeps the production deployment contract.

`docker-compose config` (Debian's v1 package) checks the file without a Docker engine. The
v2 plugin (`docker compose`) is checked too where it exists. Neither is ever skipped: a
machine without Debian's docker-compose fails with a message to run `make tools`.
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

from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
EXAMPLE_ENV = ROOT / "deploy" / "example.env"
TOPICS_FILE = ROOT / "deploy" / "topics.json"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

INFRA = ("kafka", "postgres", "redis")
ONE_SHOTS = ("topics", "migrate")
WORKERS = ("ledger-processor", "ledger-projector")
GATEWAY = "gateway"
LONG_RUNNING = (*WORKERS, GATEWAY)
LEDGERBUS_SERVICES = (*ONE_SHOTS, *LONG_RUNNING)

SECRETS = ("LEDGERBUS_JWT_SECRET", "LEDGERBUS_ADMIN_TOKEN", "LEDGERBUS_APP_KEYS")
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

    def run(self, *args: str, env_file: Path, env: Mapping[str, str] | None = None) -> Result:
        command = [
            *self.argv,
            "--file",
            str(COMPOSE_FILE),
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

    def config(self) -> Config:
        args = ("config", "--format", "json") if self.emits_json else ("config",)
        result = self.run(*args, env_file=EXAMPLE_ENV)
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
    data_dirs = {"kafka": "/var/lib/kafka/data", "postgres": "/var/lib/postgresql/data"}
    for tool, config in configs.items():
        declared = set(config.get("volumes") or {})
        for name, target in data_dirs.items():
            mounts = config["services"][name].get("volumes") or []
            sources = {
                (mount["source"], mount["target"])
                if isinstance(mount, dict)
                else tuple(str(mount).split(":")[:2])
                for mount in mounts
            }
            named = {source for source, mounted in sources if mounted == target}
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
