"""Session-wide real infrastructure: the environment's servers, containers, or embedded ones.

KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL and REDIS_URL are used when set; otherwise containers when
a Docker engine answers; otherwise the embedded broker, PostgreSQL and Redis from the wheels.
Every test that needs them gets its own database and topic prefix, so tests never share state.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.infra.embedded_process import EmbeddedServer
from shared.infra.provision import Infrastructure, Provisioned, provision


@pytest.fixture(scope="session")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioned]:
    state = tmp_path_factory.mktemp("infrastructure")
    provisioned = provision(os.environ, Path(state), kafka_port=None, clean=True)
    try:
        yield provisioned
    finally:
        provisioned.stop()


@pytest.fixture(scope="session")
def infrastructure(provisioned: Provisioned) -> Infrastructure:
    return provisioned.infrastructure


@pytest.fixture(scope="session")
def embedded_postgres(provisioned: Provisioned) -> EmbeddedServer | None:
    """The session's PostgreSQL when this run started it (not when DATABASE_URL names one):
    tests that stop and start PostgreSQL need a server of their own to do it to."""
    return provisioned.embedded_servers().get("postgres")
