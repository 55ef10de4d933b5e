"""Running the real `python -m ledgerbus dev` in a test, on free ports, in its own folder,
with every line it prints kept, and stopped by PID if the test did not stop it."""

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from shared.infra.ports import free_port
from tests.support.waiting import eventually

START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 45.0
OUTPUT_LINE_LIMIT_BYTES = 1024 * 1024
OUTPUT_TAIL_CHARACTERS = 4000
INFRASTRUCTURE_VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL")


@dataclass
class DevRun:
    """One `python -m ledgerbus dev` process, with every line it printed so far."""

    process: asyncio.subprocess.Process
    workdir: Path
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def tail(self) -> str:
        return self.output[-OUTPUT_TAIL_CHARACTERS:]

    async def collect_output(self) -> None:
        assert self.process.stdout is not None
        while True:
            try:
                line = await self.process.stdout.readline()
            except ValueError:
                self.lines.append("[a line too long to keep was dropped]")
                continue
            if not line:
                return
            self.lines.append(line.decode(errors="replace").rstrip("\r\n"))

    def find(self, pattern: str) -> re.Match[str] | None:
        for line in self.lines:
            match = re.search(pattern, line)
            if match is not None:
                return match
        return None

    async def wait_for_line(self, pattern: str, timeout_seconds: float) -> re.Match[str]:
        async def probe() -> re.Match[str] | None:
            return self.find(pattern)

        match = await eventually(probe, bool, f"a line matching {pattern!r}", timeout_seconds)
        assert match is not None
        return match

    async def wait_until_serving(self) -> str:
        """Wait until dev wrote dev.env (the gateway answers by then); return the gateway URL."""
        match = await self.wait_for_line(r"press Ctrl-C to stop everything", START_TIMEOUT_SECONDS)
        assert match is not None, self.tail
        values = dict(
            line.split("=", 1)
            for line in (self.workdir / ".ledgerbus" / "dev.env").read_text().splitlines()
        )
        return values["GATEWAY_URL"]

    def embedded_pid(self, name: str) -> int:
        """Return the PID of an embedded server from the line provisioning printed."""
        match = self.find(rf"^ledgerbus \| {name}\s+embedded\s+\S+\s+\(pid (\d+),")
        assert match is not None, self.tail
        return int(match.group(1))

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def gateway_pid(self, excluded: set[int]) -> int | None:
        """Return the PID of a live gateway process not in ``excluded``, if there is one."""
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return None
        for child in children:
            if child.pid in excluded:
                continue
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                is_gateway = child.cmdline()[-2:] == ["run", "gateway"]
                if is_gateway and child.status() != psutil.STATUS_ZOMBIE:
                    return child.pid
        return None

    async def wait_for_exit(self, timeout_seconds: float) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout_seconds)


@contextlib.asynccontextmanager
async def running_dev(workdir: Path) -> AsyncIterator[DevRun]:
    """Run `python -m ledgerbus dev` in ``workdir``; stop it (by PID) if the test did not."""
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
        limit=OUTPUT_LINE_LIMIT_BYTES,
    )
    dev = DevRun(process, workdir)
    reader = asyncio.create_task(dev.collect_output())
    try:
        yield dev
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()
        await reader
