"""`make dev` runs the supervisor: it starts everything, serves, and stops without leftovers."""

import signal
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.dev_runs import START_TIMEOUT_SECONDS, STOP_TIMEOUT_SECONDS, running_dev
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def run_once(workdir: Path, stop_signal: int) -> None:
    async with running_dev(workdir) as dev:
        gateway_url = await dev.wait_until_serving()
        values = dict(
            line.split("=", 1)
            for line in (workdir / ".ledgerbus" / "dev.env").read_text().splitlines()
        )
        assert set(values) == {
            "GATEWAY_URL",
            "KAFKA_BOOTSTRAP_SERVERS",
            "DATABASE_URL",
            "REDIS_URL",
        }
        async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
            assert (await client.get("/health")).status_code == 200
            # Readiness says every consumer holds its partitions: only then is a write decided
            # at once rather than after the group has formed.
            await eventually(
                lambda: client.get("/ready"), lambda r: r.status_code == 200, "readiness",
                START_TIMEOUT_SECONDS,
            )  # fmt: skip
            response = await client.post(
                "/ledger/",
                headers={"X-Api-Key": "dev-healthai-key"},
                json={"owner_id": "dev-user", "operation": "SIGNUP_CREDIT", "nonce": "signup"},
            )
            assert response.status_code == 201, response.text
        descendants = dev.descendants()
        command_lines = [" ".join(child.cmdline()) for child in descendants]
        for name in ("ledger-processor", "ledger-projector", "gateway", "redis", "postgres"):
            assert any(name in line for line in command_lines), (name, command_lines)
        dev.process.send_signal(stop_signal)
        exit_code = await dev.wait_for_exit(STOP_TIMEOUT_SECONDS)
    assert exit_code == 0, dev.tail
    assert "starting from clean state" in dev.output
    assert "stopped; nothing left running." in dev.output
    alive = [
        child
        for child in descendants
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == [], [child.cmdline() for child in alive]
    assert not (workdir / ".ledgerbus" / "dev.env").exists()


async def test_make_dev_starts_serves_and_stops_twice(tmp_path: Path) -> None:
    await run_once(tmp_path, signal.SIGTERM)
    await run_once(tmp_path, signal.SIGINT)
