"""A small asyncio supervisor for the Ledgerbus service processes of a development run.

Every child runs in its own session so that Ctrl-C at the terminal reaches only the
supervisor, which then stops the children in a deliberate order. Every child also asks
the kernel to send it SIGTERM when the supervisor dies, so that a crashed or SIGKILLed
supervisor never leaves orphans behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

# The value of PR_SET_PDEATHSIG in <linux/prctl.h>.
LINUX_PRCTL_SET_PARENT_DEATH_SIGNAL = 1

DEFAULT_STOP_TIMEOUT_SECONDS = 10.0
OUTPUT_LINE_LIMIT_BYTES = 1024 * 1024
OUTPUT_DRAIN_TIMEOUT_SECONDS = 2.0
RESTART_BACKOFF_INITIAL_SECONDS = 0.5
RESTART_BACKOFF_MAXIMUM_SECONDS = 10.0
RESTART_WINDOW_SECONDS = 60.0
MAXIMUM_RESTARTS_PER_MINUTE = 5
NAME_COLUMN_MINIMUM_WIDTH_CHARACTERS = 8

ANSI_RESET = "\x1b[0m"
ANSI_NAME_COLORS = ("\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[31m")

ExitCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class GiveUp:
    """The supervisor stopped restarting a child that kept crashing."""

    name: str
    # Restarts counted within the window when the child crashed once more.
    restarts: int
    window_seconds: float
    # The exit code of the last crash; a negative code is the number of the ending signal.
    last_exit_code: int

    def describe(self) -> str:
        """Return a sentence naming the child and why the supervisor gave up on it."""
        return (
            f"{self.name} crashed again (exit code {self.last_exit_code}) after "
            f"{self.restarts} restarts within {self.window_seconds:.0f} seconds"
        )


GiveUpCallback = Callable[[GiveUp], None]


def parent_death_signal_setter(
    death_signal: signal.Signals = signal.SIGTERM,
) -> Callable[[], None]:
    """Return a ``preexec_fn`` that makes the child receive ``death_signal`` when we die.

    The C library is loaded here, in the parent, because loading libraries between fork
    and exec is not safe. On systems other than Linux the returned function does nothing.
    Note that Linux delivers the signal when the *thread* that started the child exits,
    so children must be started from a thread that lives as long as the supervisor.
    """
    if not sys.platform.startswith("linux"):
        return _do_nothing
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(LINUX_PRCTL_SET_PARENT_DEATH_SIGNAL, int(death_signal), 0, 0, 0)
        # If the parent died between fork and prctl, the kernel will never send the
        # signal, so the child delivers it to itself instead of running as an orphan.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), death_signal)

    return set_parent_death_signal


def _do_nothing() -> None:
    return None


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one supervised child.

    ``environment`` is the complete environment of the child; nothing is inherited from
    the supervisor, so callers merge ``os.environ`` themselves when they want that.
    """

    name: str
    argv: Sequence[str]
    environment: Mapping[str, str]
    restart_on_exit: bool = False


@dataclass
class _Child:
    spec: ProcessSpec
    color: str
    process: asyncio.subprocess.Process | None = None
    output_task: asyncio.Task[None] | None = None
    watch_task: asyncio.Task[None] | None = None
    # True while the supervisor itself is stopping or restarting the child, so that the
    # exit it causes is not mistaken for a crash and answered with an automatic restart.
    exit_expected: bool = False
    restart_times: deque[float] = field(default_factory=deque)


class ProcessGroup:
    """Starts, prefixes the output of, restarts and stops a set of named child processes.

    When a child with ``restart_on_exit`` crashes more often than the restart budget allows,
    the group stops restarting it and reports a ``GiveUp``: to ``on_give_up`` at once, and
    to whoever awaits ``wait_for_give_up()``. What to do then (carry on, or stop everything)
    is the owner's decision, so the group itself stays generic.
    """

    def __init__(
        self,
        sink: TextIO | None = None,
        *,
        on_exit: ExitCallback | None = None,
        on_give_up: GiveUpCallback | None = None,
        restart_backoff_initial_seconds: float = RESTART_BACKOFF_INITIAL_SECONDS,
        restart_backoff_maximum_seconds: float = RESTART_BACKOFF_MAXIMUM_SECONDS,
        maximum_restarts_per_minute: int = MAXIMUM_RESTARTS_PER_MINUTE,
    ) -> None:
        self._sink = sink if sink is not None else sys.stdout
        self._on_exit = on_exit
        self._on_give_up = on_give_up
        self._restart_backoff_initial_seconds = restart_backoff_initial_seconds
        self._restart_backoff_maximum_seconds = restart_backoff_maximum_seconds
        self._maximum_restarts_per_minute = maximum_restarts_per_minute
        self._children: dict[str, _Child] = {}
        self._stop_requested = asyncio.Event()
        self._give_ups: list[GiveUp] = []
        self._given_up = asyncio.Event()
        self._use_color = _is_terminal(self._sink)

    async def start(self, spec: ProcessSpec) -> None:
        """Start a child under ``spec.name``; a stopped child of that name is replaced."""
        existing = self._children.get(spec.name)
        if existing is not None and _is_running(existing):
            raise ValueError(f"A process named {spec.name!r} is already running.")
        color = ANSI_NAME_COLORS[len(self._children) % len(ANSI_NAME_COLORS)]
        child = _Child(spec=spec, color=existing.color if existing else color)
        # Re-inserting moves the name to the end, so the stop order follows start order.
        self._children.pop(spec.name, None)
        self._children[spec.name] = child
        await self._spawn(child)

    def names(self) -> tuple[str, ...]:
        """The names of every child started, in start order."""
        return tuple(self._children)

    def pid(self, name: str) -> int | None:
        """Return the PID of the running child ``name``, or None when it is not running."""
        child = self._child(name)
        return child.process.pid if child.process is not None and _is_running(child) else None

    def running(self, name: str) -> bool:
        """Return whether the child ``name`` is running."""
        return _is_running(self._child(name))

    def kill(self, name: str, signal_number: int = signal.SIGTERM) -> None:
        """Send ``signal_number`` to the child ``name`` (by PID) if it is running.

        The supervisor treats the resulting exit like a crash, so a child with
        ``restart_on_exit`` is started again; that makes this useful for chaos tests.
        """
        child = self._child(name)
        if child.process is not None and _is_running(child):
            _send_signal_quietly(child.process, signal_number)

    async def wait_for_exit(self, name: str, timeout_seconds: float) -> int:
        """Wait until the current process of ``name`` exits and return its exit code.

        A negative code means the process was ended by that signal number.

        Raises:
            TimeoutError: the process was still running when the timeout expired.
        """
        process = self._child(name).process
        if process is None:
            raise RuntimeError(f"The process {name!r} was never started.")
        return await asyncio.wait_for(process.wait(), timeout_seconds)

    @property
    def give_ups(self) -> tuple[GiveUp, ...]:
        """Every give-up since the group was made, oldest first."""
        return tuple(self._give_ups)

    async def wait_for_give_up(self) -> GiveUp:
        """Wait until the group gives up on any child and return the first give-up.

        A give-up that happened before the call is returned at once, so the owner cannot
        miss one that came while it was busy elsewhere.
        """
        await self._given_up.wait()
        return self._give_ups[0]

    async def restart(
        self, name: str, timeout_seconds: float = DEFAULT_STOP_TIMEOUT_SECONDS
    ) -> None:
        """Stop the child ``name`` (SIGTERM, then SIGKILL after the timeout) and start it again."""
        child = self._child(name)
        child.exit_expected = True
        await self._terminate([child], timeout_seconds)
        if child.watch_task is not None:
            await child.watch_task
        # A deliberate restart is not a crash, so it does not use up the restart budget.
        child.restart_times.clear()
        await self._spawn(child)

    async def stop_all(self, timeout_seconds: float = DEFAULT_STOP_TIMEOUT_SECONDS) -> None:
        """Stop every child: SIGTERM in reverse start order, then SIGKILL the survivors.

        All children share one deadline, so stopping takes at most ``timeout_seconds``
        plus the moment SIGKILL needs, however many children there are.
        """
        self._stop_requested.set()
        children = list(reversed(self._children.values()))
        # A restart that was already past its backoff when the stop began can start a new
        # process while we wait, so stopping repeats until no child is running any more.
        while True:
            for child in children:
                child.exit_expected = True
            await self._terminate(children, timeout_seconds)
            watch_tasks = [child.watch_task for child in children if child.watch_task is not None]
            await asyncio.gather(*watch_tasks, return_exceptions=True)
            if not any(_is_running(child) for child in children):
                break
        # The group may be used again after a full stop, for example by a test.
        self._stop_requested.clear()

    def _child(self, name: str) -> _Child:
        try:
            return self._children[name]
        except KeyError:
            raise KeyError(f"No process named {name!r} was started in this group.") from None

    async def _spawn(self, child: _Child) -> None:
        spec = child.spec
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            env=dict(spec.environment),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=parent_death_signal_setter(),
            limit=OUTPUT_LINE_LIMIT_BYTES,
        )
        child.process = process
        child.exit_expected = False
        assert process.stdout is not None  # Guaranteed by stdout=PIPE above.
        child.output_task = asyncio.create_task(self._copy_output(child, process.stdout))
        child.watch_task = asyncio.create_task(self._watch(child, process))

    async def _terminate(self, children: Sequence[_Child], timeout_seconds: float) -> None:
        """SIGTERM the given children by PID, wait, then SIGKILL the process group of survivors."""
        running = [child.process for child in children if child.process is not None]
        running = [process for process in running if process.returncode is None]
        for process in running:
            _send_signal_quietly(process, signal.SIGTERM)
        waits = [asyncio.ensure_future(process.wait()) for process in running]
        if not waits:
            return
        _, still_waiting = await asyncio.wait(waits, timeout=timeout_seconds)
        for process in running:
            if process.returncode is None:
                # The child has not been reaped, so its PID (which is also its process
                # group id, since it leads its own session) still names only our child
                # and whatever it started; killing the group leaves no grandchildren.
                _kill_process_group(process.pid)
        if still_waiting:
            await asyncio.wait(still_waiting)

    async def _copy_output(self, child: _Child, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:
                self._write(
                    child, f"[a line longer than {OUTPUT_LINE_LIMIT_BYTES} bytes was dropped]"
                )
                continue
            if not line:
                return
            self._write(child, line.decode("utf-8", errors="replace").rstrip("\r\n"))

    async def _watch(self, child: _Child, process: asyncio.subprocess.Process) -> None:
        return_code = await process.wait()
        # A grandchild that inherited the pipe can keep it open after the child exits,
        # so the output copy gets a bounded time to drain before it is abandoned.
        if child.output_task is not None:
            try:
                await asyncio.wait_for(
                    asyncio.shield(child.output_task), OUTPUT_DRAIN_TIMEOUT_SECONDS
                )
            except TimeoutError:
                child.output_task.cancel()
        self._write(child, f"[exited with code {return_code}]")
        if self._on_exit is not None:
            try:
                self._on_exit(child.spec.name, return_code)
            except Exception as error:
                # A faulty callback must not stop the supervisor from restarting the child.
                self._write(child, f"[the exit callback failed: {error!r}]")
        if child.spec.restart_on_exit and not child.exit_expected:
            await self._restart_after_backoff(child, return_code)

    async def _restart_after_backoff(self, child: _Child, return_code: int) -> None:
        now = time.monotonic()
        while child.restart_times and now - child.restart_times[0] > RESTART_WINDOW_SECONDS:
            child.restart_times.popleft()
        recent_restarts = len(child.restart_times)
        if recent_restarts >= self._maximum_restarts_per_minute:
            self._give_up(
                child, GiveUp(child.spec.name, recent_restarts, RESTART_WINDOW_SECONDS, return_code)
            )
            return
        delay_seconds = min(
            self._restart_backoff_initial_seconds * 2**recent_restarts,
            self._restart_backoff_maximum_seconds,
        )
        self._write(child, f"[restarting in {delay_seconds:.1f} seconds]")
        try:
            # Waiting on the stop event instead of sleeping lets stop_all end the backoff.
            await asyncio.wait_for(self._stop_requested.wait(), delay_seconds)
            return
        except TimeoutError:
            pass
        if child.exit_expected or _is_running(child):
            return
        child.restart_times.append(time.monotonic())
        await self._spawn(child)

    def _give_up(self, child: _Child, give_up: GiveUp) -> None:
        self._write(
            child,
            f"[giving up: restarted {give_up.restarts} times within "
            f"{give_up.window_seconds:.0f} seconds]",
        )
        self._give_ups.append(give_up)
        self._given_up.set()
        if self._on_give_up is not None:
            try:
                self._on_give_up(give_up)
            except Exception as error:
                # The give-up is recorded and awaitable even when the callback fails.
                self._write(child, f"[the give-up callback failed: {error!r}]")

    def _write(self, child: _Child, text: str) -> None:
        width = max(NAME_COLUMN_MINIMUM_WIDTH_CHARACTERS, *map(len, self._children))
        label = child.spec.name.ljust(width)
        if self._use_color:
            label = f"{child.color}{label}{ANSI_RESET}"
        self._sink.write(f"{label} | {text}\n")
        self._sink.flush()


def _is_running(child: _Child) -> bool:
    return child.process is not None and child.process.returncode is None


def _is_terminal(sink: TextIO) -> bool:
    try:
        return sink.isatty()
    except (AttributeError, ValueError):
        return False


def _send_signal_quietly(process: asyncio.subprocess.Process, signal_number: int) -> None:
    # The process may exit between our check and the signal; that is the outcome we want.
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal_number)


def _kill_process_group(process_group_id: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process_group_id, signal.SIGKILL)
