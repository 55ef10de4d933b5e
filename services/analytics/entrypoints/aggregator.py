"""Process entry: `ledgerbus run analytics-aggregator`.

The aggregator is no FastStream worker: its checkpoints live in Redis with the aggregates (ADR
0017), so it runs its own consumer loop, with the same `/health`, `/ready` and `/metrics` on the
ops port and the same exit codes as every worker: 0 after SIGTERM or SIGINT, 3 after a fatal
error, 2 on bad configuration.
"""

import asyncio
import signal
import sys

from services.analytics.bootstrap import Aggregator, build_aggregator
from services.analytics.settings import AGGREGATOR_NAME
from shared.logs import configure_logging, get_logger
from shared.settings import ConfigurationError, PlatformSettings, load_settings
from shared.worker import (
    EXIT_CONFIGURATION,
    EXIT_FATAL,
    EXIT_OK,
    STOP_STEP_TIMEOUT_SECONDS,
    build_ops_server,
    stop_ops_server,
)

logger = get_logger(__name__)


def main() -> int:
    try:
        settings = load_settings()
        configure_logging(settings, AGGREGATOR_NAME)
        return asyncio.run(_run(settings))
    except ConfigurationError as error:
        print(f"{AGGREGATOR_NAME} refuses to start: {error}", file=sys.stderr, flush=True)
        return EXIT_CONFIGURATION


async def _run(settings: PlatformSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    aggregator = build_aggregator(settings)
    ops_server = build_ops_server(aggregator.readiness, settings)
    ops_task = asyncio.create_task(ops_server.serve()) if ops_server else None
    exit_code = EXIT_OK
    try:
        await aggregator.lag.start()
        await aggregator.consumer.start()
        logger.info("aggregator started", generation=aggregator.consumer.generation)
        await _until_stopped(aggregator, stop)
    except Exception as error:
        logger.critical("aggregator stopped after a fatal error", error=repr(error))
        exit_code = EXIT_FATAL
    finally:
        await _stop(aggregator)
        await stop_ops_server(ops_server, ops_task)
    return exit_code


async def _until_stopped(aggregator: Aggregator, stop: asyncio.Event) -> None:
    """Run the loop until asked to stop; an error of the loop itself ends the process."""
    work = asyncio.create_task(aggregator.consumer.run_until(stop))
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if work in done:
        stopped.cancel()
        work.result()  # raises what ended it
        return
    try:
        await asyncio.wait_for(work, STOP_STEP_TIMEOUT_SECONDS)
    except TimeoutError:
        logger.warning("aggregator loop did not stop in time; cancelled")


async def _stop(aggregator: Aggregator) -> None:
    steps = (aggregator.consumer.stop, aggregator.lag.stop, aggregator.redis.aclose)
    for step in steps:
        try:
            await asyncio.wait_for(step(), STOP_STEP_TIMEOUT_SECONDS)
        except Exception as error:
            logger.warning("stop step failed", error=repr(error))
