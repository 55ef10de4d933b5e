"""`make dev` runs the supervisor: it starts everything, serves, and stops without leftovers."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from shared.infra.ports import free_port
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 45.0
INFRASTRUCTURE_VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL")


async def run_once(workdir: Path, stop_signal: int) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in INFRASTRUCTURE_VARIABLES}
    environment |= {
        "LEDGERBUS_KAFKA_PORT": str(free_port()),
        "LEDGERBUS_HTTP_PORT": str(free_port()),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ledgerbus",
        "dev",
        cwd=workdir,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = asyncio.create_task(process.stdout.read())  # type: ignore[union-attr]
    dev_env = workdir / ".ledgerbus" / "dev.env"
    try:
        await eventually(_exists(dev_env), bool, "dev.env", START_TIMEOUT_SECONDS)
        values = dict(line.split("=", 1) for line in dev_env.read_text().splitlines())
        assert set(values) == {
            "GATEWAY_URL",
            "KAFKA_BOOTSTRAP_SERVERS",
            "DATABASE_URL",
            "REDIS_URL",
        }
        async with httpx.AsyncClient(base_url=values["GATEWAY_URL"], timeout=30) as client:
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
        descendants = psutil.Process(process.pid).children(recursive=True)
        command_lines = [" ".join(child.cmdline()) for child in descendants]
        for name in ("ledger-processor", "ledger-projector", "gateway", "redis", "postgres"):
            assert any(name in line for line in command_lines), (name, command_lines)
    finally:
        process.send_signal(stop_signal)
        exit_code = await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
    text = (await output).decode(errors="replace")
    assert exit_code == 0, text[-3000:]
    assert "starting from clean state" in text and "stopped; nothing left running." in text
    alive = [
        child
        for child in descendants
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == [], [child.cmdline() for child in alive]
    assert not dev_env.exists()


def _exists(path: Path):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await asyncio.to_thread(path.exists)

    return check


async def test_make_dev_starts_serves_and_stops_twice(tmp_path: Path) -> None:
    await run_once(tmp_path, signal.SIGTERM)
    await run_once(tmp_path, signal.SIGINT)
