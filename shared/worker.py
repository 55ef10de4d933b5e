"""Running a worker process: start, serve health, stop cleanly on SIGTERM or a fatal error.

A worker is a FastStream broker with partition-owner subscribers plus the pool and producer they
use. `run_worker` owns the lifecycle so every service's process behaves the same way: it exits 0
after a requested stop and 3 after a fatal error (for example a checkpoint beyond the log).
"""

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from starlette.applications import Starlette

from shared.logs import configure_logging, get_logger
from shared.observability.health import Readiness, health_routes
from shared.settings import ConfigurationError, PlatformSettings, load_settings

EXIT_OK = 0
EXIT_CONFIGURATION = 2
EXIT_FATAL = 3
STOP_STEP_TIMEOUT_SECONDS = 5.0
"""Each stop step (consumer, upkeep, producer flush, pool) gets this long: a broker or database
that is down must not keep SIGTERM from ending the process."""

logger = get_logger(__name__)


@dataclass(slots=True)
class Worker:
    name: str
    broker: KafkaBroker
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    readiness: Readiness
    extra_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    extra_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass(slots=True)
class StopSignal:
    """Set by SIGTERM/SIGINT or by a fatal error; remembers which, for the exit code."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    fatal: BaseException | None = None

    def request(self) -> None:
        self.event.set()

    def fail(self, error: BaseException) -> None:
        if self.fatal is None:
            self.fatal = error
        self.event.set()


Builder = Callable[[PlatformSettings, StopSignal], Awaitable[Worker]]


def run_worker(process_name: str, build: Builder) -> int:
    """Entry point of a worker process; returns the exit code."""
    try:
        settings = load_settings()
        configure_logging(settings, process_name)
        return asyncio.run(_run(process_name, settings, build))
    except ConfigurationError as error:
        print(f"{process_name} refuses to start: {error}", file=sys.stderr, flush=True)
        return EXIT_CONFIGURATION


async def _run(process_name: str, settings: PlatformSettings, build: Builder) -> int:
    stop = StopSignal()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.request)
    worker = await build(settings, stop)
    ops_server = build_ops_server(worker.readiness, settings)
    ops_task = asyncio.create_task(ops_server.serve()) if ops_server else None
    try:
        await worker.producer.start()
        for start in worker.extra_start:
            await start()
        await worker.broker.start()
        logger.info("worker started", process=process_name)
        await stop.event.wait()
    finally:
        await _stop(worker, ops_server, ops_task)
    if stop.fatal is not None:
        logger.critical("worker stopped after a fatal error", error=str(stop.fatal))
        return EXIT_FATAL
    logger.info("worker stopped", process=process_name)
    return EXIT_OK


def build_ops_server(readiness: Readiness, settings: PlatformSettings) -> uvicorn.Server | None:
    """`/health`, `/ready` and `/metrics` on the ops port (none when the port is 0)."""
    if settings.ledgerbus_ops_port == 0:
        return None
    app = Starlette(routes=health_routes(readiness))
    config = uvicorn.Config(
        app,
        host="0.0.0.0" if settings.is_production else "127.0.0.1",
        port=settings.ledgerbus_ops_port,
        log_level="warning",
        lifespan="off",
    )
    return _OpsServer(config)


class _OpsServer(uvicorn.Server):
    """uvicorn, minus its signal handling: the worker itself owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def stop_ops_server(
    ops_server: uvicorn.Server | None, ops_task: asyncio.Task[None] | None
) -> None:
    if ops_server is not None and ops_task is not None:
        ops_server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ops_task, STOP_STEP_TIMEOUT_SECONDS)


async def _stop(
    worker: Worker, ops_server: uvicorn.Server | None, ops_task: asyncio.Task[None] | None
) -> None:
    """Stop in dependency order, each step bounded, so SIGTERM always ends the process."""
    steps: list[Callable[[], Awaitable[None]]] = [worker.broker.stop]
    steps += [*worker.extra_stop, worker.producer.stop, worker.pool.close]
    for step in steps:
        try:
            await asyncio.wait_for(step(), STOP_STEP_TIMEOUT_SECONDS)
        except Exception as error:
            logger.warning(
                "stop step failed", step=getattr(step, "__qualname__", "?"), error=repr(error)
            )
    await stop_ops_server(ops_server, ops_task)
