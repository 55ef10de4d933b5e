"""Fixtures for the infrastructure tests: each embedded server of its own, logging beside it."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.infra import EmbeddedKafka, EmbeddedPostgres, EmbeddedRedis


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.fixture
def kafka(log_dir: Path) -> Iterator[EmbeddedKafka]:
    server = EmbeddedKafka(log_dir=log_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(log_dir: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(log_dir=log_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres(tmp_path: Path, log_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "postgres", log_dir=log_dir)
    server.start()
    yield server
    server.stop()
