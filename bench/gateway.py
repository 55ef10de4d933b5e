"""Gateway reads under wrk: `GET /ledger/{owner_id}` against a bare Starlette endpoint."""

import asyncio
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.infra.ports import free_port, wait_for_port

WRK_THREADS = 1
WRK_CONNECTIONS = 32
WRK_SECONDS = 10
WARMUP_SECONDS = 2
SERVER_START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Load:
    requests_per_second: float
    p99_milliseconds: float


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match is not None, text
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


async def wrk(
    url: str, headers: dict[str, str], seconds: int, *, connections: int = WRK_CONNECTIONS,
    script: Path | None = None, environment: dict[str, str] | None = None,
) -> Load:  # fmt: skip
    """wrk's rate and p99; a `script` (with `environment`) can pace the requests."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is missing: run `make tools` (Debian package wrk)")
    arguments = [binary, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        arguments += ["-H", f"{name}: {value}"]
    if script is not None:
        arguments += ["-s", str(script)]
    process = await asyncio.create_subprocess_exec(
        *arguments, url, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **(environment or {})},
    )  # fmt: skip
    output = (await process.communicate())[0].decode()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors from {url}:\n{output}")
    return Load(rps, _milliseconds(p99))


async def measure(url: str, headers: dict[str, str]) -> Load:
    await wrk(url, headers, WARMUP_SECONDS)
    return await wrk(url, headers, WRK_SECONDS)


async def bare_endpoint(
    environment: dict[str, str] | None = None,
) -> tuple[asyncio.subprocess.Process, str]:
    """uvicorn serving the bare app with the gateway's settings: one process, no access log."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1",
        "--port", str(port), "--log-level", "warning", "--no-access-log",
        env={**os.environ, **(environment or {})},
    )  # fmt: skip
    await asyncio.to_thread(wait_for_port, "127.0.0.1", port, SERVER_START_TIMEOUT_SECONDS)
    return process, f"http://127.0.0.1:{port}"
