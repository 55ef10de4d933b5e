"""A running stack per test module: the ledger's processes (or the wallet's) and the gateway."""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ledgerbus.registry import GATEWAY_PROCESS
from shared.infra.provision import Infrastructure
from tests.support.stacks import LedgerStack, running_stack

LEDGER_PROCESSES = ("ledger-processor", "ledger-projector", GATEWAY_PROCESS)
WALLET_PROCESSES = ("wallet-processor", "wallet-projector", GATEWAY_PROCESS)
"""Each module runs only the processes its tests need: on two cores every idle process still
costs heartbeats and fetches."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ledger(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("ledger") / "stack.log"
    async with running_stack(infrastructure, log_path, LEDGER_PROCESSES) as stack:
        await stack.wait_until_ready()
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def wallet(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("wallet") / "stack.log"
    async with running_stack(infrastructure, log_path, WALLET_PROCESSES) as stack:
        await stack.wait_until_ready()
        yield stack
