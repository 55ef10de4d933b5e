"""Failures are visible and short, under load (section 2 of issue 5).

- A SIGKILLed processor or projector: the supervisor restarts it, its group hands the
  partitions on, and writes (or read-your-write reads) are answered again within seconds;
  meanwhile `/ready` answers 503. The target is 5 s; the tests allow three times that on a
  loaded machine and print the measured figure.
- PostgreSQL stopped under load: every write answers JSON 503 or 504 with its `command_id`
  and `Retry-After` (the command is in the log), reads 503 with `Retry-After`; started again,
  every command is decided and the audit matches.
"""

import asyncio
import functools
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from shared.infra.embedded_process import EmbeddedServer
from shared.infra.provision import Infrastructure
from tests.support.commands import ledgerbus
from tests.support.load import Writers
from tests.support.stacks import LedgerStack, running_stack
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
RECOVERY_TARGET_SECONDS = 5.0
RECOVERY_BOUND_SECONDS = 3 * RECOVERY_TARGET_SECONDS
WRITERS = 4
STEADY_ANSWERS = 40
READY_POLL_SECONDS = 0.1
POSTGRES_DOWN_SECONDS = 4.0
SETTLE_TIMEOUT_SECONDS = 90.0


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("recovery") / "stack.log"
    async with running_stack(
        infrastructure, log_path, ("ledger-processor", "ledger-projector", "gateway"),
        restart_on_exit=True,
    ) as ledger:  # fmt: skip
        await ledger.wait_until_ready()
        yield ledger


class ReadyWatch:
    """Polls `/ready` in the background and remembers every status with its time."""

    def __init__(self, ledger: LedgerStack) -> None:
        self.seen: list[tuple[float, int]] = []
        self._ledger = ledger
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        async with httpx.AsyncClient(base_url=self._ledger.gateway_url, timeout=5) as client:
            while True:
                try:
                    status = (await client.get("/ready")).status_code
                except httpx.HTTPError:
                    status = 0
                self.seen.append((time.monotonic(), status))
                await asyncio.sleep(READY_POLL_SECONDS)

    def __enter__(self) -> "ReadyWatch":
        self._task = asyncio.create_task(self._poll())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def steady(writers: Writers) -> None:
    async def count() -> int:
        return sum(1 for answer in writers.answers if answer.status == 201)

    await eventually(count, lambda n: n >= STEADY_ANSWERS, "steady writes")


async def kill_and_measure(
    ledger: LedgerStack, process: str, recovered: Callable[[float], float | None]
) -> tuple[float, list[tuple[float, int]]]:
    """SIGKILL `process`; returns seconds until `recovered(killed_at)` names an answer time."""
    assert ledger.stack is not None
    with ReadyWatch(ledger) as watch:
        killed_at = time.monotonic()
        ledger.stack.group.kill(process, signal.SIGKILL)

        async def probe() -> float | None:
            return recovered(killed_at)

        answered = await eventually(probe, lambda t: t is not None, f"{process} to recover", 60)
        assert answered is not None
        await eventually(
            lambda: _ready(ledger), lambda status: status == 200, "readiness again", 60
        )
    return answered - killed_at, [(t - killed_at, s) for t, s in watch.seen if t >= killed_at]


async def _ready(ledger: LedgerStack) -> int:
    async with ledger.client(None) as client:
        return (await client.get("/ready")).status_code


async def test_a_sigkilled_processor_is_answering_again_within_seconds(
    stack: LedgerStack, tmp_path: Path
) -> None:
    writers = Writers(stack, WRITERS)
    writers.start()
    try:
        await steady(writers)

        def next_answer(killed_at: float) -> float | None:
            answer = writers.first_success_sent_after(killed_at)
            return None if answer is None else answer.answered

        seconds, ready = await kill_and_measure(stack, "ledger-processor", next_answer)
    finally:
        await writers.stop()
    print(f"\nprocessor SIGKILL: a write sent after the kill answered {seconds:.2f} s later")
    assert seconds < RECOVERY_BOUND_SECONDS
    assert any(status == 503 for _, status in ready), "readiness must notice the dead owner"
    assert all(a.status in (201, 504) for a in writers.answers), writers.answers[-5:]
    await all_answered(stack, writers)
    audit = await ledgerbus({**os.environ, **stack.environment}, "audit", "--service", "ledger")
    assert audit.exit_code == 0, audit.output


async def test_a_sigkilled_projector_serves_read_your_writes_again_within_seconds(
    stack: LedgerStack,
) -> None:
    reads: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def read_your_writes() -> None:
        async with stack.client() as client:
            while not stop.is_set():
                sent = time.monotonic()
                owner = f"ryw-{uuid.uuid4().hex[:8]}"
                written = await client.post(
                    "/ledger/",
                    json={"owner_id": owner, "operation": "CREDIT_ADD", "nonce": owner},
                )
                assert written.status_code == 201, (written.status_code, written.text)
                position = written.json()["position"]
                read = await client.get(f"/ledger/{owner}", params={"min_position": position})
                if read.status_code == 200:
                    reads.append((sent, time.monotonic()))

    task = asyncio.create_task(read_your_writes())
    try:
        await eventually(lambda: _count(reads), lambda n: n >= 5, "steady reads")

        def next_read(killed_at: float) -> float | None:
            fresh = [answered for sent, answered in reads if sent >= killed_at]
            return min(fresh, default=None)

        seconds, ready = await kill_and_measure(stack, "ledger-projector", next_read)
    finally:
        stop.set()
        await task
    print(f"\nprojector SIGKILL: a write sent after the kill was readable {seconds:.2f} s later")
    assert seconds < RECOVERY_BOUND_SECONDS
    assert any(status == 503 for _, status in ready), "readiness must notice the dead owner"


async def _count(items: list[tuple[float, float]]) -> int:
    return len(items)


async def all_answered(stack: LedgerStack, writers: Writers) -> None:
    """Every command that got a command id (a 503 or 504) has a stored answer in the end."""
    pending = [str(a.body["command_id"]) for a in writers.answers if "command_id" in a.body]
    async with stack.client() as client:
        for command_id in pending:
            await eventually(
                functools.partial(client.get, f"/ledger/commands/{command_id}"),
                lambda r: r.status_code == 201,
                f"the answer of {command_id}",
                SETTLE_TIMEOUT_SECONDS,
            )


async def test_postgres_stopped_under_load_answers_json_with_the_command_id_and_loses_nothing(
    stack: LedgerStack, embedded_postgres: EmbeddedServer | None
) -> None:
    if embedded_postgres is None:
        pytest.skip("PostgreSQL is external (DATABASE_URL): this test cannot stop it")
    writers = Writers(stack, WRITERS)
    writers.start()
    reads: list[httpx.Response] = []
    try:
        await steady(writers)
        stopped_at = time.monotonic()
        await asyncio.to_thread(embedded_postgres.stop)
        async with stack.client() as client:
            while time.monotonic() - stopped_at < POSTGRES_DOWN_SECONDS:
                reads.append(await client.get("/ledger/someone"))
        await asyncio.to_thread(embedded_postgres.start)
        restarted_at = time.monotonic()
        await eventually(
            lambda: _count_after(writers, restarted_at), lambda n: n > 0, "writes after restart",
            SETTLE_TIMEOUT_SECONDS,
        )  # fmt: skip
    finally:
        await writers.stop()
    during = [a for a in writers.answers if a.sent >= stopped_at and a.answered < restarted_at]
    failures = [a for a in during if a.status != 201]
    assert failures, "some writes must have met the outage"
    for answer in failures:
        assert answer.status in (503, 504), answer
        assert "command_id" in answer.body or answer.body["code"] == "dependency_unavailable"
    assert {r.status_code for r in reads} <= {200, 503}
    assert all(r.headers.get("retry-after") for r in reads if r.status_code == 503)
    assert writers.errors == []
    await all_answered(stack, writers)
    audit = await ledgerbus({**os.environ, **stack.environment}, "audit", "--service", "ledger")
    assert audit.exit_code == 0, audit.output


async def _count_after(writers: Writers, moment: float) -> int:
    return sum(1 for a in writers.answers if a.status == 201 and a.sent >= moment)
