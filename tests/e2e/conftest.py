"""A running ledger stack per test module: processor, projector and gateway processes."""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ledgerbus.stack import all_processes
from shared.infra.provision import Infrastructure
from tests.support.stacks import LedgerStack, running_stack

ALL_PROCESSES = all_processes()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ledger(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("ledger") / "stack.log"
    async with running_stack(infrastructure, log_path, ALL_PROCESSES) as stack:
        await stack.wait_until_ready()
        yield stack
