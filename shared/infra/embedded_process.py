"""The child-process plumbing shared by the embedded servers.

A server is started as a plain child process in a session of its own, with its output
in a log file and a parent-death signal set, and is stopped by the PID this object
started, never by name: the graceful signal first, SIGKILL after a timeout.

A server that died on its own is noticed without being reaped (``exited``), because an
unreaped child keeps its PID, and with it the number of its process group, reserved: the
workers it forked can then still be ended by that number without any risk of signalling an
unrelated process that reused it. ``stop`` ends those leftovers, reaps the server, and
leaves the object ready to ``start`` again on the same port.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from shared.infra.ports import LOOPBACK_HOST, free_port, port_is_free
from shared.infra.process_group import parent_death_signal_setter

DEFAULT_START_TIMEOUT_SECONDS = 10.0
DEFAULT_STOP_TIMEOUT_SECONDS = 5.0
READINESS_POLL_INTERVAL_SECONDS = 0.05
ERROR_LOG_TAIL_LINE_COUNT = 30
ERROR_LOG_TAIL_MAXIMUM_BYTES = 64 * 1024
EXIT_POLL_INTERVAL_SECONDS = 0.02
# Leftover workers get SIGKILL, which ends them at once unless they are stuck in the
# kernel; past this bound the stop goes on and a later start reports what is in the way.
PROCESS_GROUP_EXIT_TIMEOUT_SECONDS = 5.0

# Zombies and processes being torn down, as /proc/PID/stat shows them.
_DEAD_PROCESS_STATES = frozenset({"Z", "X", "x"})

_ResultType = TypeVar("_ResultType")


class EmbeddedStartError(RuntimeError):
    """An embedded server could not be started; the message includes the end of its log."""


class PortInUseError(EmbeddedStartError):
    """The port requested for an embedded server is already taken by another process."""


def run_coroutine_blocking(
    coroutine_factory: Callable[[], Coroutine[Any, Any, _ResultType]],
) -> _ResultType:
    """Run a coroutine to completion from synchronous code and return its result.

    The coroutine always gets a private event loop in a helper thread. Calling
    ``asyncio.run`` here instead would fail inside a running loop (an async test or
    command) and, outside one, would reset this thread's current event loop to None.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(lambda: asyncio.run(coroutine_factory())).result()


@dataclass(frozen=True)
class ServerExit:
    """How a server process ended: its PID and its exit code."""

    pid: int
    # Negative when a signal ended the process, as in ``subprocess``: -9 is SIGKILL.
    exit_code: int

    def describe(self) -> str:
        """Return the exit code, with the signal's name when a signal ended the process."""
        if self.exit_code >= 0:
            return f"exit code {self.exit_code}"
        try:
            signal_name = signal.Signals(-self.exit_code).name
        except ValueError:
            signal_name = f"signal {-self.exit_code}"
        return f"exit code {self.exit_code} (ended by {signal_name})"


class EmbeddedServer:
    """Shared lifecycle of one server child: spawn, wait until ready, stop by PID."""

    process_name = "server"
    start_timeout_seconds = DEFAULT_START_TIMEOUT_SECONDS
    stop_timeout_seconds = DEFAULT_STOP_TIMEOUT_SECONDS
    graceful_stop_signal = signal.SIGTERM
    # The environment variable a developer sets to choose this server's port, if any;
    # it is named in the error message when the chosen port is taken.
    port_environment_variable: str | None = None
    # Why starting this server again after it died would mislead its clients, or None
    # when a restart on the same port serves them as before.
    restart_in_place_refusal: str | None = None

    def __init__(self, port: int | None, log_dir: Path | None) -> None:
        self._port: int | None = port
        default_log_dir = Path(tempfile.gettempdir()) / "ledgerbus-logs"
        self.log_dir = log_dir if log_dir is not None else default_log_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._started_before = False

    @property
    def pid(self) -> int | None:
        """The PID of the running server, or None when it is not running."""
        if self._process is None or _exit_code_without_reaping(self._process) is not None:
            return None
        return self._process.pid

    def exited(self) -> ServerExit | None:
        """Return how the server ended if it died since its start, or None while it runs.

        The server is not reaped here; ``stop`` does that, after ending any workers it
        left behind. None is also the answer when the server was never started or stopped.
        """
        if self._process is None:
            return None
        exit_code = _exit_code_without_reaping(self._process)
        if exit_code is None:
            return None
        return ServerExit(self._process.pid, exit_code)

    @property
    def port(self) -> int:
        """The TCP port of the server; chosen on the first start when none was requested."""
        if self._port is None:
            raise RuntimeError(f"{self.process_name} has no port before its first start().")
        return self._port

    @property
    def log_path(self) -> Path:
        """The file that receives the server's stdout and stderr."""
        return self.log_dir / f"{self.process_name}.log"

    @property
    def url(self) -> str:
        """The address clients use to reach the server."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the server and return once it answers requests; does nothing if running.

        Linux sends the server SIGTERM when the *thread* that called this exits, so call
        it from a thread that lives as long as the server should (normally the main one).
        """
        if self.pid is not None:
            return
        # A server that died on its own is reaped, with its leftovers, before the new one.
        self.stop()
        port = self._claim_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # A later start appends, so the log still shows why the previous server ended.
        self._log_file = self.log_path.open("ab" if self._started_before else "wb")
        self._started_before = True
        try:
            self._prepare()
            self._process = self._spawn(self._command(port))
            self._wait_until_ready()
            self._after_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server: the graceful signal first, SIGKILL after the stop timeout.

        This also cleans up after a server that died on its own (even by SIGKILL): the
        workers it left are ended and it is reaped, so ``start`` may follow at once.
        Safe to repeat.
        """
        process, self._process = self._process, None
        if process is not None:
            if _exit_code_without_reaping(process) is None:
                # The server is not reaped, so its PID still names our child.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, self.graceful_stop_signal)
                _wait_for_exit_without_reaping(process, self.stop_timeout_seconds)
            if process.returncode is None:
                # Until the server is reaped its PID is still its process group id, and the
                # group holds only the server and the workers it forked: SIGKILL ends them.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            _wait_for_process_group_to_empty(process.pid)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _claim_port(self) -> int:
        if self._port is None:
            self._port = free_port()
            return self._port
        if not port_is_free(self._port):
            hint = ""
            if self.port_environment_variable is not None:
                hint = (
                    f" Set {self.port_environment_variable} to another port,"
                    " or stop the process that uses this one."
                )
            raise PortInUseError(
                f"Cannot start {self.process_name}: port {self._port} on {LOOPBACK_HOST} "
                f"is already in use.{hint}"
            )
        return self._port

    def _prepare(self) -> None:
        """Work that must happen before the server process starts; none by default."""

    def _command(self, port: int) -> list[str]:
        raise NotImplementedError

    def _spawn_options(self) -> dict[str, Any]:
        """Extra ``subprocess.Popen`` arguments, such as the user to run as."""
        return {}

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _after_ready(self) -> None:
        """Work that needs the running server, such as creating a database; none by default."""

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            # A session of its own keeps Ctrl-C at the terminal away from the server, so
            # the supervisor can stop the services before the infrastructure they use.
            start_new_session=True,
            # The function only calls prctl and getppid, which take no locks that another
            # thread could hold at fork time, so it is safe even in threaded programs.
            preexec_fn=parent_death_signal_setter(),  # noqa: PLW1509
            **self._spawn_options(),
        )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_seconds
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None  # Set by start() just before this call.
            return_code = _exit_code_without_reaping(self._process)
            if return_code is not None:
                raise EmbeddedStartError(
                    f"{self.process_name} exited with code {return_code} while starting."
                    + self._log_tail()
                )
            try:
                if self._is_ready():
                    return
            except Exception as error:
                last_error = f"{type(error).__name__}: {error}"
            time.sleep(READINESS_POLL_INTERVAL_SECONDS)
        raise EmbeddedStartError(
            f"{self.process_name} did not become ready on port {self._port} within "
            f"{self.start_timeout_seconds:.0f} seconds (last probe: {last_error})."
            + self._log_tail()
        )

    def _log_tail(self) -> str:
        """Return the end of the server log, formatted for an exception message."""
        if self._log_file is not None:
            self._log_file.flush()
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - ERROR_LOG_TAIL_MAXIMUM_BYTES))
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return f"\n(The log {self.log_path} could not be read.)"
        tail = "\n".join(text.splitlines()[-ERROR_LOG_TAIL_LINE_COUNT:])
        return f"\nLast lines of {self.log_path}:\n{tail}"


def _exit_code_without_reaping(process: subprocess.Popen[bytes]) -> int | None:
    """Return the exit code of ``process`` once it has ended, leaving it unreaped.

    The code follows ``subprocess``: negative when a signal ended the process.
    """
    if process.returncode is not None:
        return process.returncode
    try:
        status = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        # Something else reaped it; Popen.poll records that as an exit with code 0.
        return process.poll()
    if status is None:
        return None
    if status.si_code == os.CLD_EXITED:
        return status.si_status
    return -status.si_status


def _wait_for_exit_without_reaping(
    process: subprocess.Popen[bytes], timeout_seconds: float
) -> None:
    """Wait, within ``timeout_seconds``, until ``process`` ends, without reaping it."""
    deadline = time.monotonic() + timeout_seconds
    while _exit_code_without_reaping(process) is None:
        if time.monotonic() >= deadline:
            return
        time.sleep(EXIT_POLL_INTERVAL_SECONDS)


def _wait_for_process_group_to_empty(process_group_id: int) -> None:
    """Wait, within a bound, until no live process remains in ``process_group_id``.

    A server such as PostgreSQL refuses to start while workers of its previous run still
    hold its shared memory, so a restart must not begin before they are gone.
    """
    deadline = time.monotonic() + PROCESS_GROUP_EXIT_TIMEOUT_SECONDS
    while _process_group_has_live_members(process_group_id):
        if time.monotonic() >= deadline:
            return
        time.sleep(EXIT_POLL_INTERVAL_SECONDS)


def _process_group_has_live_members(process_group_id: int) -> bool:
    """Return whether a process other than a zombie is in ``process_group_id``.

    Orphaned workers are reaped by the system's init process, which inside a container
    may never do so; a zombie holds nothing, so zombies do not count.
    """
    process_table = Path("/proc")
    if not process_table.is_dir():
        try:
            os.killpg(process_group_id, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in process_table.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            # After the command name come the state, the parent PID and the process group.
            state, process_group = fields[0], int(fields[2])
        except (OSError, IndexError, ValueError):
            # The process ended while we looked, which is what we wait for.
            continue
        if process_group == process_group_id and state not in _DEAD_PROCESS_STATES:
            return True
    return False
