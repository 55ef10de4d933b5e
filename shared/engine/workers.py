"""Building a worker process around one partition handler: the same wiring for every service.

A processor (decides commands) and a projector (folds events into read models) are both a
`PartitionHandler` run by a `PartitionOwner` inside a FastStream batch subscriber; this module
connects the pool, the producer, the broker, the owner and its upkeep, and the readiness checks.
"""

import logging
from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from shared.engine.partition_handler import PartitionHandler
from shared.engine.partition_owner import PartitionOwner
from shared.engine.upkeep import OwnerUpkeep
from shared.kafka.log_end import LogEndProbe
from shared.kafka.producer import create_producer
from shared.kafka.subscriber import subscribe_partition_owner
from shared.observability.health import Readiness
from shared.postgres.pool import create_pool
from shared.settings import PlatformSettings
from shared.worker import StopSignal, Worker


class HaltedPartitionsError(RuntimeError):
    """Readiness: this process holds halted partitions (the message names them and why)."""


async def build_owner_worker(
    settings: PlatformSettings,
    stop: StopSignal,
    *,
    name: str,
    schema: str,
    topics: Sequence[str],
    handler: PartitionHandler,
    sweeps_deadlines: bool,
    batch_max_records: int,
    description: str,
) -> Worker:
    """A worker whose partition owner runs `handler` on `topics` (already prefixed)."""
    pool = await create_pool(settings.postgres_dsn, application_name=name)
    producer = create_producer(settings.kafka_bootstrap_servers, client_id=name)
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=name,
        logger=logging.getLogger(f"faststream.{name}"),
    )
    log_end = LogEndProbe(settings.kafka_bootstrap_servers, client_id=f"{name}-log-end")
    owner = PartitionOwner(
        consumer_name=name, schema=schema, pool=pool, producer=producer, handler=handler,
        on_fatal=stop.fail, log_end=log_end,
    )  # fmt: skip
    upkeep = OwnerUpkeep(owner, sweeps_deadlines=sweeps_deadlines)
    subscribe_partition_owner(
        broker, owner, topics=list(topics), group_id=settings.group(name), description=description,
        max_records=batch_max_records,
        session_timeout_milliseconds=settings.session_timeout_milliseconds,
    )  # fmt: skip

    async def postgres() -> None:
        await pool.fetchval("SELECT 1")

    async def partitions() -> dict[str, list[str]]:
        halted = owner.halted()
        if halted:
            raise HaltedPartitionsError(
                "; ".join(f"{where} halted: {reason}" for where, reason in halted.items())
            )
        owned = sorted(owner.owned_partitions)
        return {"owned": [f"{tp.topic}[{tp.partition}]" for tp in owned]}

    readiness = Readiness({"postgres": postgres, "partitions": partitions}, process=name)
    return Worker(
        name, broker, pool, producer, readiness,
        extra_start=[log_end.start, _started(upkeep)], extra_stop=[upkeep.stop, log_end.stop],
    )  # fmt: skip


def _started(upkeep: OwnerUpkeep):  # type: ignore[no-untyped-def]
    async def start() -> None:
        upkeep.start()

    return start
