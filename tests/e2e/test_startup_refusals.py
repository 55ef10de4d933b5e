"""Processes that must refuse to start, and say why."""

import os
from pathlib import Path

import pytest

from ledgerbus.stack import prepare
from shared.infra.provision import Infrastructure
from tests.support.commands import ledgerbus
from tests.support.stacks import new_ledger_stack

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CATALOG_WITHOUT_CREDIT_ADD = """
[shared]
DAILY_REWARD = 1
SIGNUP_CREDIT = 3
CREDIT_SPEND = -1
CREDIT_ADD = 10

[apps.healthai]
DAILY_REWARD = 1
SIGNUP_CREDIT = 3
CREDIT_SPEND = -1
CONTENT_CREATION = -5
"""


@pytest.mark.parametrize("process", ["ledger-processor", "gateway"])
async def test_a_catalog_lacking_a_shared_operation_stops_the_service(
    infrastructure: Infrastructure, tmp_path: Path, process: str
) -> None:
    catalog = tmp_path / "catalogs.toml"
    catalog.write_text(CATALOG_WITHOUT_CREDIT_ADD)
    environment = {
        **os.environ,
        **infrastructure.environment(),
        "LEDGER_CATALOG_FILE": str(catalog),
    }
    result = await ledgerbus(environment, "run", process, timeout_seconds=60)
    assert result.exit_code == 2, result.output
    assert "'healthai' lacks the shared operations: CREDIT_ADD" in result.output


async def test_production_refuses_dev_secrets_and_names_them(
    infrastructure: Infrastructure,
) -> None:
    unset = ("LEDGERBUS_JWT_SECRET", "LEDGERBUS_APP_KEYS")
    environment = {
        name: value
        for name, value in {**os.environ, **infrastructure.environment()}.items()
        if name not in unset
    }
    environment |= {"LEDGERBUS_ENV": "production", "LEDGERBUS_ADMIN_TOKEN": "a-real-operator-token"}
    result = await ledgerbus(environment, "run", "ledger-processor", timeout_seconds=60)
    assert result.exit_code == 2, result.output
    assert "LEDGERBUS_JWT_SECRET" in result.output and "LEDGERBUS_APP_KEYS" in result.output
    assert "LEDGERBUS_ADMIN_TOKEN" not in result.output


async def test_a_checkpoint_past_the_end_of_the_log_is_refused_not_skipped(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    stack = await new_ledger_stack(infrastructure, tmp_path / "stack.log")
    await prepare(stack.environment)
    await stack.fetch(
        "INSERT INTO ledger.checkpoints (consumer, topic, partition, next_offset)"
        " SELECT 'ledger-processor', $1, p, 1000 FROM generate_series(0, 3) AS p",
        stack.topic("ledger.commands"),
    )
    result = await ledgerbus(
        {**os.environ, **stack.environment}, "run", "ledger-processor", timeout_seconds=90
    )
    assert result.exit_code == 3, result.output
    assert "Refusing to skip" in result.output
    assert "offset 1000, but the log ends at 0" in result.output
