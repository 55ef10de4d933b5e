"""`make dev`: the whole system on this machine, stopped cleanly by Ctrl-C or SIGTERM.

The embedded broker keeps its log in memory only, so every start is a clean start: the embedded
PostgreSQL data is reset too, and the console says so. Infrastructure named in the environment
(KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, REDIS_URL) is used as it is and never reset.

A run that cannot serve any more stops as a whole and exits with code 1, naming the reason: the
supervisor gave up on a service process that kept crashing, or an embedded server died and
could not be restarted in place (the broker never can, since its log is gone with it).
"""

import asyncio
import contextlib
import fcntl
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from ledgerbus.stack import GaveUpError, Stack, prepare, start_stack
from shared.infra.embedded_process import EmbeddedServer
from shared.infra.process_group import ProcessGroup
from shared.infra.provision import Origin, Provisioned, provision
from shared.settings import PlatformSettings

STATE_DIRECTORY = Path(".ledgerbus")
DEV_ENV_FILE = STATE_DIRECTORY / "dev.env"
LOCK_FILE = STATE_DIRECTORY / "dev.lock"
FAILURE_EXIT_CODE = 1
FAILED_STACK_STOP_TIMEOUT_SECONDS = 5.0
EMBEDDED_SERVER_CHECK_INTERVAL_SECONDS = 0.2
EMBEDDED_SERVER_RESTART_WINDOW_SECONDS = 60.0
EMBEDDED_SERVER_MAXIMUM_RESTARTS_PER_MINUTE = 3


class _StackFailedError(Exception):
    """The run cannot serve any more; the message says why, for the console."""


def say(text: str) -> None:
    print(f"ledgerbus | {text}", flush=True)


def main() -> int:
    STATE_DIRECTORY.mkdir(exist_ok=True)
    lock = LOCK_FILE.open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another `make dev` is running in this checkout; stop it first.")
        return 1
    settings = PlatformSettings()
    settings.check_secrets()
    return asyncio.run(_run(settings))


async def _run(settings: PlatformSettings) -> int:
    broker_is_embedded = "KAFKA_BOOTSTRAP_SERVERS" not in os.environ
    database_is_embedded = "DATABASE_URL" not in os.environ
    if broker_is_embedded:
        say("starting from clean state: the embedded broker keeps its log in memory only,")
        say("so the embedded PostgreSQL data is reset as well (checkpoints must match the log).")
    state_directory = await asyncio.to_thread(STATE_DIRECTORY.resolve)
    provisioned = await asyncio.to_thread(
        provision,
        os.environ,
        state_directory,
        kafka_port=settings.ledgerbus_kafka_port,
        clean=broker_is_embedded and database_is_embedded,
    )
    watch = EmbeddedServerWatch(provisioned.embedded_servers())
    stack: Stack | None = None
    failure: str | None = None
    try:
        for line in provisioned.describe():
            say(line)
        watch.start()
        environment = provisioned.infrastructure.environment()
        environment["LEDGERBUS_HTTP_PORT"] = str(settings.ledgerbus_http_port)
        try:
            stack = await _unless_failed(watch, _prepare_and_start(environment))
            _announce(stack, provisioned)
            await _serve_until_stopped(stack.group, watch)
            say("stopping every process ...")
        except _StackFailedError as error:
            failure = str(error)
            say(f"stopping the whole stack: {failure}")
    finally:
        # The watch stops first, so no embedded server is restarted while the stack stops.
        await watch.stop()
        if stack is not None and failure is None:
            await stack.stop()
        elif stack is not None:
            # After a failure the processes may wait on the part that died (a worker's
            # consumer retries a dead broker until its own stop timeout), and waiting for
            # them gains nothing, so they get a shorter grace before SIGKILL.
            await stack.group.stop_all(FAILED_STACK_STOP_TIMEOUT_SECONDS)
        await asyncio.to_thread(provisioned.stop)
        DEV_ENV_FILE.unlink(missing_ok=True)
    if failure is not None:
        say(f"stopped after a failure ({failure}); nothing left running.")
        return FAILURE_EXIT_CODE
    say("stopped; nothing left running.")
    return 0


async def _prepare_and_start(environment: Mapping[str, str]) -> Stack:
    await prepare(environment)
    say("migrations applied and topics created")
    try:
        return await start_stack(environment, restart_on_exit=True)
    except GaveUpError as error:
        raise _StackFailedError(str(error)) from error


async def _unless_failed(watch: "EmbeddedServerWatch", work: Awaitable[Stack]) -> Stack:
    """Await ``work`` unless an embedded server fails first, which raises _StackFailedError."""
    work_task = asyncio.ensure_future(work)
    failure_task = asyncio.ensure_future(watch.wait_for_failure())
    try:
        await asyncio.wait({work_task, failure_task}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work_task.cancel()
        failure_task.cancel()
        raise
    failure_task.cancel()
    if work_task.done():
        return work_task.result()
    # Processes started so far outlive this only until we exit: each was started with a
    # parent-death signal.
    work_task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await work_task
    raise _StackFailedError(failure_task.result())


async def _serve_until_stopped(group: ProcessGroup, watch: "EmbeddedServerWatch") -> None:
    """Return on Ctrl-C or SIGTERM; raise _StackFailedError when the stack cannot serve any more."""
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop_requested.set)
    signal_task = asyncio.ensure_future(stop_requested.wait())
    give_up_task = asyncio.ensure_future(group.wait_for_give_up())
    failure_task = asyncio.ensure_future(watch.wait_for_failure())
    tasks = {signal_task, give_up_task, failure_task}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    if signal_task.done() and not signal_task.cancelled():
        return
    if give_up_task.done() and not give_up_task.cancelled():
        give_up = give_up_task.result()
        raise _StackFailedError(f"the supervisor gave up on {give_up.name}: {give_up.describe()}")
    raise _StackFailedError(failure_task.result())


class EmbeddedServerWatch:
    """Notices an embedded server that died, says so, and restarts it in place or fails.

    Only servers this run started are watched; servers named in the environment belong to
    someone else. A dead server is reaped with the workers it left, then started again on
    the same port (and for PostgreSQL the same data directory), so every process's URL stays
    valid. A server that refuses a restart in place, fails to start, or dies more often than
    the restart budget allows is reported through ``wait_for_failure``.
    """

    def __init__(self, servers: Mapping[str, EmbeddedServer]) -> None:
        self._servers = dict(servers)
        self._failure: asyncio.Future[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._failure = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self._watch(name, server), name=f"watch-{name}")
            for name, server in self._servers.items()
        ]

    async def wait_for_failure(self) -> str:
        """Wait until a server fails for good and return why; waits forever otherwise."""
        assert self._failure is not None, "start() the watch first"
        return await asyncio.shield(self._failure)

    async def stop(self) -> None:
        """Stop watching; a restart under way finishes first, so nothing races the stop."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _watch(self, name: str, server: EmbeddedServer) -> None:
        try:
            await self._watch_until_failure(name, server)
        except Exception as error:
            # A watch that broke can no longer keep the server alive, so that is a failure too.
            self._fail(f"watching embedded {name} failed: {error!r}")

    async def _watch_until_failure(self, name: str, server: EmbeddedServer) -> None:
        restart_times: deque[float] = deque()
        while True:
            await asyncio.sleep(EMBEDDED_SERVER_CHECK_INTERVAL_SECONDS)
            ended = server.exited()
            if ended is None:
                continue
            say(f"embedded {name} (pid {ended.pid}) died: {ended.describe()}")
            # Reaping now leaves no zombie behind, whatever happens next.
            await _finish_in_thread(server.stop)
            if not await self._restart(name, server, restart_times):
                return

    async def _restart(
        self, name: str, server: EmbeddedServer, restart_times: deque[float]
    ) -> bool:
        """Start ``server`` again; return False once a failure was reported instead.

        A start that fails (the server may be killed again while it starts) uses up one
        restart from the budget like a death does, so the attempts are bounded by it.
        """
        last_error = "no attempt was made"
        for _ in range(EMBEDDED_SERVER_MAXIMUM_RESTARTS_PER_MINUTE):
            refusal = _restart_refusal(name, server, restart_times)
            if refusal is not None:
                self._fail(refusal)
                return False
            restart_times.append(time.monotonic())
            say(
                f"restarting embedded {name} in place on port {server.port} "
                f"(restart {len(restart_times)} of at most "
                f"{EMBEDDED_SERVER_MAXIMUM_RESTARTS_PER_MINUTE} a minute)"
            )
            try:
                await _finish_in_thread(server.start)
            except Exception as error:
                last_error = str(error)
                say(f"embedded {name} did not start again: {last_error}")
                continue
            say(f"embedded {name} restarted: pid {server.pid}, log {server.log_path}")
            return True
        self._fail(f"embedded {name} could not be restarted: {last_error}")
        return False

    def _fail(self, message: str) -> None:
        """Report the first failure; later ones add nothing, since the stack stops anyway."""
        assert self._failure is not None
        if not self._failure.done():
            self._failure.set_result(message)


def _restart_refusal(name: str, server: EmbeddedServer, restart_times: deque[float]) -> str | None:
    """Return why ``server`` must not be restarted now, or None when it may be."""
    if server.restart_in_place_refusal is not None:
        return (
            f"embedded {name} died and cannot be restarted in place: "
            f"{server.restart_in_place_refusal}. Run `make dev` again for a clean start"
        )
    now = time.monotonic()
    while restart_times and now - restart_times[0] > EMBEDDED_SERVER_RESTART_WINDOW_SECONDS:
        restart_times.popleft()
    if len(restart_times) >= EMBEDDED_SERVER_MAXIMUM_RESTARTS_PER_MINUTE:
        return (
            f"embedded {name} keeps dying: it died again after {len(restart_times)} restarts "
            f"within {EMBEDDED_SERVER_RESTART_WINDOW_SECONDS:.0f} seconds"
        )
    return None


async def _finish_in_thread(function: Callable[[], None]) -> None:
    """Run ``function`` in a worker thread; on cancellation, let it finish before leaving.

    Starting or stopping a server cannot be interrupted halfway, and the final cleanup
    must not stop a server while another thread is still starting it.
    """
    work = asyncio.ensure_future(asyncio.to_thread(function))
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise


def _announce(stack: Stack, provisioned: Provisioned) -> None:
    infrastructure = provisioned.infrastructure
    values = {
        "GATEWAY_URL": stack.gateway_url,
        "KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap_servers,
        "DATABASE_URL": infrastructure.database_url,
        "REDIS_URL": infrastructure.redis_url,
    }
    DEV_ENV_FILE.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    say(f"gateway      {stack.gateway_url}  (docs: {stack.gateway_url}/docs)")
    for key, value in values.items():
        say(f"{key:<24}{value}")
    for name, port in stack.ops_ports.items():
        say(f"{name:<24}http://127.0.0.1:{port}/metrics")
    embedded = [part.name for part in provisioned.parts if part.origin is Origin.EMBEDDED]
    say(f"embedded parts: {', '.join(embedded) or 'none'}; wrote {DEV_ENV_FILE}")
    say("press Ctrl-C to stop everything")


if __name__ == "__main__":
    sys.exit(main())
