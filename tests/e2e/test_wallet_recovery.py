"""SIGKILL of the wallet processor in the middle of 2,000 transfers (issue 6): the supervisor
restarts it, its partitions are claimed again, every transfer reaches a final answer (none stays
pending), and the invariants of the concurrent run still hold."""

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from ledgerbus.registry import GATEWAY_PROCESS
from shared.infra.provision import Infrastructure
from tests.support.stacks import LedgerStack, running_stack
from tests.support.waiting import eventually
from tests.support.wallet_load import TransferRun, check_invariants, random_plans, send_all
from tests.support.wallet_users import WalletUser, register

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
USERS = 20
TRANSFERS = 2_000
CONCURRENCY = 100
KILL_AFTER_ANSWERS = 400
RECOVERY_BOUND_SECONDS = 30.0


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("wallet-recovery") / "stack.log"
    processes = ("wallet-processor", "wallet-projector", GATEWAY_PROCESS)
    async with running_stack(infrastructure, log_path, processes, restart_on_exit=True) as running:
        await running.wait_until_ready()
        yield running


async def test_a_processor_killed_mid_run_loses_nothing_and_leaves_nothing_pending(
    stack: LedgerStack,
) -> None:
    assert stack.stack is not None
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=stack.gateway_url, limits=limits, timeout=60) as client:
        people: list[WalletUser] = list(
            await asyncio.gather(*(register(client, f"kill{i}") for i in range(USERS)))
        )
        plans = random_plans(people, TRANSFERS, 0.1, seed=66, amount_max=100_000)
        run = TransferRun(plans)
        sending = asyncio.create_task(send_all(client, plans, CONCURRENCY, run))

        async def answers() -> int:
            return len(run.outcomes)

        await eventually(answers, lambda n: n >= KILL_AFTER_ANSWERS, "answers before the kill", 120)
        killed_at = time.monotonic()
        stack.stack.group.kill("wallet-processor", signal.SIGKILL)
        await sending
        finished = time.monotonic()
        answered = Counter(outcome.status for outcome in run.outcomes)
        print(f"\nkilled after {KILL_AFTER_ANSWERS} answers; run ended {finished - killed_at:.1f} s"
              f" after the kill: {dict(answered)}")  # fmt: skip
        assert set(answered) <= {201, 202, 409, 503, 504}, answered
        codes = await check_invariants(stack, client, people, run)
        assert codes["completed"] > 0, codes
