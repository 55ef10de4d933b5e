"""A running ledger stack per test module: processor, projector and gateway processes."""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shared.infra.provision import Infrastructure
from tests.support.stacks import LedgerStack, new_ledger_stack

ALL_PROCESSES = ("ledger-processor", "ledger-projector", "gateway")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ledger(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("ledger") / "stack.log"
    stack = await new_ledger_stack(infrastructure, log_path)
    with log_path.open("w") as sink:
        await stack.start(ALL_PROCESSES, sink)
        try:
            await stack.wait_until_owned("ledger-processor", "ledger.commands")
            await stack.wait_until_owned("ledger-projector", "ledger.events")
            yield stack
        finally:
            await stack.stop()
