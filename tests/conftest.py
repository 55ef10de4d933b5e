"""Session-wide real infrastructure: the environment's servers, containers, or embedded ones.

KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL and REDIS_URL are used when set; otherwise containers when
a Docker engine answers; otherwise the embedded broker, PostgreSQL and Redis from the wheels.
Every test that needs them gets its own database and topic prefix, so tests never share state.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.infra.provision import Infrastructure, provision


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    state = tmp_path_factory.mktemp("infrastructure")
    provisioned = provision(os.environ, Path(state), kafka_port=None, clean=True)
    try:
        yield provisioned.infrastructure
    finally:
        provisioned.stop()
