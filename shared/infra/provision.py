"""Decide where Kafka, PostgreSQL and Redis come from for a run, and start what is missing.

For each part the rule is the same: a URL in the environment wins; otherwise a container
when a Docker engine answers; otherwise an embedded process started from a Python wheel.
Only the parts started here are stopped here, so external servers are never touched.
"""

from __future__ import annotations

import functools
import importlib
import shutil
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from shared.infra.embedded import (
    KAFKA_PORT_ENVIRONMENT_VARIABLE,
    EmbeddedKafka,
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServer,
)

KAFKA_ENVIRONMENT_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"
DATABASE_ENVIRONMENT_VARIABLE = "DATABASE_URL"
REDIS_ENVIRONMENT_VARIABLE = "REDIS_URL"
APPLICATION_DATABASE = "ledgerbus"
POSTGRES_DATA_DIRECTORY_NAME = "postgres"
LOG_DIRECTORY_NAME = "logs"
DOCKER_PING_TIMEOUT_SECONDS = 3.0
MAXIMUM_TCP_PORT = 65535
KAFKA_CONTAINER_IMAGE = "confluentinc/cp-kafka:7.6.0"
POSTGRES_CONTAINER_IMAGE = "postgres:18"
REDIS_CONTAINER_IMAGE = "redis:7"
REDIS_CONTAINER_PORT = 6379


class Origin(StrEnum):
    """Where one part of the infrastructure comes from."""

    EXTERNAL = "external"
    CONTAINER = "container"
    EMBEDDED = "embedded"


class _Stoppable(Protocol):
    def stop(self) -> Any: ...


@dataclass(frozen=True)
class ProvisionedPart:
    """One part of the infrastructure: its name, address and origin."""

    name: str
    environment_variable: str
    url: str
    origin: Origin
    detail: str
    # The PID of an embedded server started for this part; None for the other origins.
    pid: int | None = None


@dataclass(frozen=True)
class Infrastructure:
    """The addresses of the infrastructure, and which parts this process started."""

    kafka_bootstrap_servers: str
    database_url: str
    redis_url: str
    # Names ("kafka", "postgres", "redis") of the parts started by provision(), in order.
    started: tuple[str, ...]

    def environment(self) -> dict[str, str]:
        """Return the environment variables that point a service at this infrastructure."""
        return {
            KAFKA_ENVIRONMENT_VARIABLE: self.kafka_bootstrap_servers,
            DATABASE_ENVIRONMENT_VARIABLE: self.database_url,
            REDIS_ENVIRONMENT_VARIABLE: self.redis_url,
        }


class Provisioned:
    """The result of provision(): the addresses, plus a way to stop what was started."""

    def __init__(
        self,
        infrastructure: Infrastructure,
        parts: tuple[ProvisionedPart, ...],
        handles: list[_Stoppable],
        notes: tuple[str, ...] = (),
        embedded_servers: Mapping[str, EmbeddedServer] | None = None,
    ) -> None:
        self.infrastructure = infrastructure
        self.parts = parts
        self._handles = handles
        self._notes = notes
        self._embedded_servers = dict(embedded_servers or {})

    def embedded_servers(self) -> dict[str, EmbeddedServer]:
        """Return the embedded servers started by provision(), by part name.

        A supervisor uses these to notice a server that died, and tests to stop and start
        one (``stop()`` then ``start()`` keeps its port, so every URL stays valid). Parts
        named in the environment or run in containers are not included.
        """
        return dict(self._embedded_servers)

    def stop(self) -> None:
        """Stop the parts started by provision(), in reverse start order; safe to repeat."""
        handles, self._handles = self._handles, []
        _stop_in_reverse(handles)

    def describe(self) -> list[str]:
        """Return one human-readable line per part, saying where it comes from."""
        name_width = max(len(part.name) for part in self.parts)
        origin_width = max(len(part.origin.value) for part in self.parts)
        lines = [
            f"{part.name:<{name_width}}  {part.origin.value:<{origin_width}}  "
            f"{_hide_password(part.url)}  ({part.detail})"
            for part in self.parts
        ]
        return lines + list(self._notes)


@dataclass(frozen=True)
class _Recipe:
    name: str
    environment_variable: str
    start_container: Callable[[], tuple[str, _Stoppable]]
    make_embedded: Callable[[], EmbeddedKafka | EmbeddedPostgres | EmbeddedRedis]


def provision(
    environment: Mapping[str, str],
    state_dir: Path,
    *,
    kafka_port: int | None,
    clean: bool,
) -> Provisioned:
    """Find or start Kafka, PostgreSQL and Redis and return their addresses.

    ``kafka_port`` fixes the port of an embedded broker; when it is None the value of
    LEDGERBUS_KAFKA_PORT in ``environment`` is used, and failing that a free port.
    ``clean`` deletes the embedded PostgreSQL data first. That matters because the
    embedded broker keeps its log in memory: after a restart the log is empty, and
    consumer positions stored in a kept database would point past its end.
    """
    state_dir = state_dir.absolute()
    data_dir = state_dir / POSTGRES_DATA_DIRECTORY_NAME
    log_dir = state_dir / LOG_DIRECTORY_NAME
    if clean and data_dir.exists():
        shutil.rmtree(data_dir)
    data_was_kept = (data_dir / "PG_VERSION").exists()
    broker_port = kafka_port if kafka_port is not None else _kafka_port_from(environment)
    recipes = (
        _Recipe(
            "kafka",
            KAFKA_ENVIRONMENT_VARIABLE,
            _start_kafka_container,
            lambda: EmbeddedKafka(broker_port, log_dir=log_dir),
        ),
        _Recipe(
            "postgres",
            DATABASE_ENVIRONMENT_VARIABLE,
            _start_postgres_container,
            lambda: EmbeddedPostgres(data_dir, database=APPLICATION_DATABASE, log_dir=log_dir),
        ),
        _Recipe(
            "redis",
            REDIS_ENVIRONMENT_VARIABLE,
            _start_redis_container,
            lambda: EmbeddedRedis(log_dir=log_dir),
        ),
    )
    docker_answers = functools.cache(docker_engine_answers)
    parts: list[ProvisionedPart] = []
    handles: list[_Stoppable] = []
    embedded_servers: dict[str, EmbeddedServer] = {}
    try:
        for recipe in recipes:
            part, handle = _provide(recipe, environment, docker_answers)
            parts.append(part)
            if isinstance(handle, EmbeddedServer):
                embedded_servers[part.name] = handle
            if handle is not None:
                handles.append(handle)
    except BaseException:
        # A part that failed to start must not leave the parts before it running.
        _stop_in_reverse(handles)
        raise
    started = tuple(part.name for part in parts if part.origin is not Origin.EXTERNAL)
    urls = {part.name: part.url for part in parts}
    infrastructure = Infrastructure(urls["kafka"], urls["postgres"], urls["redis"], started)
    notes = _notes_about(parts, data_was_kept)
    return Provisioned(infrastructure, tuple(parts), handles, notes, embedded_servers)


def docker_engine_answers() -> bool:
    """Return whether a Docker engine answers a ping within a few seconds."""
    try:
        # Imported by name because the docker SDK ships no type information.
        docker = importlib.import_module("docker")
        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_SECONDS)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _provide(
    recipe: _Recipe,
    environment: Mapping[str, str],
    docker_answers: Callable[[], bool],
) -> tuple[ProvisionedPart, _Stoppable | None]:
    external_url = environment.get(recipe.environment_variable, "").strip()
    if external_url:
        detail = f"from {recipe.environment_variable}"
        part = ProvisionedPart(
            recipe.name, recipe.environment_variable, external_url, Origin.EXTERNAL, detail
        )
        return part, None
    if docker_answers():
        url, container = recipe.start_container()
        part = ProvisionedPart(
            recipe.name, recipe.environment_variable, url, Origin.CONTAINER, "testcontainers"
        )
        return part, container
    server = recipe.make_embedded()
    server.start()
    detail = f"pid {server.pid}, log {server.log_path}"
    part = ProvisionedPart(
        recipe.name, recipe.environment_variable, server.url, Origin.EMBEDDED, detail, server.pid
    )
    return part, server


def _start_kafka_container() -> tuple[str, _Stoppable]:
    from testcontainers.kafka import KafkaContainer

    container = KafkaContainer(KAFKA_CONTAINER_IMAGE).start()
    return str(container.get_bootstrap_server()), container


def _start_postgres_container() -> tuple[str, _Stoppable]:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(
        POSTGRES_CONTAINER_IMAGE, dbname=APPLICATION_DATABASE, driver=None
    ).start()
    return str(container.get_connection_url()), container


def _start_redis_container() -> tuple[str, _Stoppable]:
    from testcontainers.redis import RedisContainer

    container = RedisContainer(REDIS_CONTAINER_IMAGE).start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(REDIS_CONTAINER_PORT)
    return f"redis://{host}:{port}/0", container


def _kafka_port_from(environment: Mapping[str, str]) -> int | None:
    text = environment.get(KAFKA_PORT_ENVIRONMENT_VARIABLE, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) <= MAXIMUM_TCP_PORT:
        raise ValueError(
            f"{KAFKA_PORT_ENVIRONMENT_VARIABLE}={text!r} is not a TCP port "
            f"(a whole number from 1 to {MAXIMUM_TCP_PORT})."
        )
    return int(text)


def _notes_about(parts: list[ProvisionedPart], data_was_kept: bool) -> tuple[str, ...]:
    origins = {part.name: part.origin for part in parts}
    both_embedded = origins["kafka"] is Origin.EMBEDDED and origins["postgres"] is Origin.EMBEDDED
    if both_embedded and data_was_kept:
        return (
            "note: the embedded broker starts with an empty log but the PostgreSQL data "
            "was kept; stored consumer positions may point past the end of the log "
            "(start with clean=True to reset both).",
        )
    return ()


def _stop_in_reverse(handles: list[_Stoppable]) -> None:
    """Stop every handle, last first; one failure does not keep the others running."""
    first_error: BaseException | None = None
    for handle in reversed(handles):
        try:
            handle.stop()
        except Exception as error:
            first_error = first_error or error
    if first_error is not None:
        raise first_error


def _hide_password(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
