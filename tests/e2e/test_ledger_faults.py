"""Faults: a processor SIGKILLed mid-run, and a group member dying while another takes over."""

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from shared.infra.ports import free_port
from shared.infra.process_group import ProcessSpec
from shared.infra.provision import Infrastructure
from tests.support.commands import ledgerbus
from tests.support.ledger_log import Workload, fold_events, make_workload
from tests.support.stacks import LedgerStack, publish, running_stack
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

COMMANDS = 2_000
PUBLISH_CHUNK = 50
PUBLISH_PAUSE_SECONDS = 0.02
"""Commands trickle in (about 2,500 per second) so the kill lands in the middle of the run."""
SETTLE_TIMEOUT_SECONDS = 90.0
SMALL_BATCHES = {"LEDGER_BATCH_MAX_RECORDS": "20"}


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("faults") / "stack.log"
    processes = ("ledger-projector", "gateway")
    async with running_stack(infrastructure, log_path, processes, SMALL_BATCHES) as ledger:
        yield ledger


async def trickle(ledger: LedgerStack, workload: Workload) -> None:
    records = workload.records
    for start in range(0, len(records), PUBLISH_CHUNK):
        await publish(
            ledger.bootstrap,
            ledger.topic("ledger.commands"),
            records[start : start + PUBLISH_CHUNK],
        )
        await asyncio.sleep(PUBLISH_PAUSE_SECONDS)


async def outcomes(ledger: LedgerStack) -> int:
    """Commands answered so far (the processor's inbox rows with a reply)."""
    rows = await ledger.fetch(
        "SELECT count(*) AS n FROM ledger.inbox WHERE reply_status IS NOT NULL"
    )
    return int(rows[0]["n"])


async def outbox_rows(ledger: LedgerStack) -> int:
    rows = await ledger.fetch("SELECT count(*) AS n FROM ledger.outbox")
    return int(rows[0]["n"])


async def assert_everything_once(ledger: LedgerStack, workload: Workload) -> None:
    await eventually(
        lambda: outcomes(ledger),
        lambda n: n == len(workload.command_ids),
        "every command to have its answer",
        SETTLE_TIMEOUT_SECONDS,
    )
    answered = await ledger.fetch("SELECT message_id FROM ledger.inbox")
    assert {row["message_id"] for row in answered} == workload.command_ids
    # The last batch's events may still be on their way from the outbox: fold only once it is
    # empty, or the fold misses events the decision state already holds.
    await eventually(lambda: outbox_rows(ledger), lambda n: n == 0, "an empty outbox")
    fold = await fold_events(ledger)
    accounts = await ledger.fetch("SELECT app, owner_id, balance, sequence FROM ledger.accounts")
    assert {(r["app"], r["owner_id"]): r["balance"] for r in accounts} == fold.balances
    assert {(r["app"], r["owner_id"]): r["sequence"] for r in accounts} == fold.sequences
    await eventually(
        lambda: ledger.fetch("SELECT app, owner_id, balance FROM ledger.balances"),
        lambda rows: {(r["app"], r["owner_id"]): r["balance"] for r in rows} == fold.balances,
        "the read model to equal the fold of the log",
        SETTLE_TIMEOUT_SECONDS,
    )
    audit = await ledgerbus({**os.environ, **ledger.environment}, "audit", "--service", "ledger")
    assert audit.exit_code == 0, audit.output


async def test_sigkill_of_the_processor_mid_run_then_restart(stack: LedgerStack) -> None:
    assert stack.stack is not None
    group = stack.stack.group
    await group.start(stack.stack.spec("ledger-processor", restart_on_exit=False))
    await stack.wait_until_owned("ledger-processor", "ledger.commands")
    workload = make_workload(COMMANDS, owners=40, seed=1)
    producing = asyncio.create_task(trickle(stack, workload))
    await eventually(lambda: outcomes(stack), lambda n: n >= COMMANDS // 4, "a quarter of the run")
    group.kill("ledger-processor", signal.SIGKILL)
    assert await group.wait_for_exit("ledger-processor", 10) == -signal.SIGKILL
    killed_at = await outcomes(stack)
    assert killed_at < len(workload.command_ids), "the kill must land mid-run"
    await group.start(stack.stack.spec("ledger-processor", restart_on_exit=False))
    await producing
    await assert_everything_once(stack, workload)


async def test_a_second_member_takes_the_partitions_of_a_killed_one(stack: LedgerStack) -> None:
    assert stack.stack is not None
    group = stack.stack.group
    first = stack.stack.spec("ledger-processor", restart_on_exit=False)
    second_port = free_port()
    second = ProcessSpec(
        name="ledger-processor-b",
        argv=(sys.executable, "-m", "ledgerbus", "run", "ledger-processor"),
        environment={**first.environment, "LEDGERBUS_OPS_PORT": str(second_port)},
    )
    await group.start(first)
    await group.start(second)
    first_port = int(first.environment["LEDGERBUS_OPS_PORT"])
    await eventually(
        lambda: asyncio.gather(_owned(first_port), _owned(second_port)),
        lambda owned: all(owned) and sum(len(p) for p in owned) == 4,
        "the two members to split the four partitions",
    )
    workload = make_workload(COMMANDS, owners=40, seed=2)
    producing = asyncio.create_task(trickle(stack, workload))
    await eventually(lambda: outcomes(stack), lambda n: n >= COMMANDS // 4, "a quarter of the run")
    group.kill("ledger-processor-b", signal.SIGKILL)
    assert await group.wait_for_exit("ledger-processor-b", 10) == -signal.SIGKILL
    killed_at = await outcomes(stack)
    assert killed_at < len(workload.command_ids), "the kill must land mid-run"
    await eventually(
        lambda: _owned(first_port), lambda owned: len(owned) == 4, "the survivor to own all four"
    )
    await producing
    await assert_everything_once(stack, workload)
    assert group.running("ledger-processor")
    assert len(await _owned(first_port)) == 4


async def _owned(ops_port: int) -> list[str]:
    """The partitions a processor reports on its /ready route (empty while it starts)."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            report = (await client.get(f"http://127.0.0.1:{ops_port}/ready")).json()
    except httpx.HTTPError:
        return []
    return list(report["checks"]["partitions"]["details"]["owned"])
