"""`make dev`: the whole system on this machine, stopped cleanly by Ctrl-C or SIGTERM.

The embedded broker keeps its log in memory only, so every start is a clean start: the embedded
PostgreSQL data is reset too, and the console says so. Infrastructure named in the environment
(KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, REDIS_URL) is used as it is and never reset.
"""

import asyncio
import fcntl
import os
import signal
import sys
from pathlib import Path

from ledgerbus.stack import Stack, prepare, start_stack
from shared.infra.provision import Origin, Provisioned, provision
from shared.settings import PlatformSettings

STATE_DIRECTORY = Path(".ledgerbus")
DEV_ENV_FILE = STATE_DIRECTORY / "dev.env"
LOCK_FILE = STATE_DIRECTORY / "dev.lock"


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
    stack: Stack | None = None
    try:
        for line in provisioned.describe():
            say(line)
        environment = provisioned.infrastructure.environment()
        environment["LEDGERBUS_HTTP_PORT"] = str(settings.ledgerbus_http_port)
        await prepare(environment)
        say("migrations applied and topics created")
        stack = await start_stack(environment, restart_on_exit=True)
        _announce(stack, provisioned)
        await _wait_for_stop_signal()
        say("stopping every process ...")
    finally:
        if stack is not None:
            await stack.stop()
        await asyncio.to_thread(provisioned.stop)
        DEV_ENV_FILE.unlink(missing_ok=True)
    say("stopped; nothing left running.")
    return 0


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


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    await stop.wait()


if __name__ == "__main__":
    sys.exit(main())
