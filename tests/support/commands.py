"""Running `ledgerbus` commands as subprocesses, as an operator would."""

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass

COMMAND_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Completed:
    exit_code: int
    output: str


async def ledgerbus(
    environment: Mapping[str, str],
    *arguments: str,
    timeout_seconds: float = COMMAND_TIMEOUT_SECONDS,
) -> Completed:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ledgerbus",
        *arguments,
        env=dict(environment),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Completed(process.returncode, output.decode(errors="replace"))
