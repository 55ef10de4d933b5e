"""Wiring for the ledger's processes. Nothing connects until a builder is awaited."""

import logging

from faststream.kafka import KafkaBroker

from services.ledger.adapters.decision_store import DecisionStore
from services.ledger.handlers.record_entry import RecordEntryHandler
from services.ledger.projections.projector import LedgerViewProjector
from services.ledger.projections.view_store import ViewStore
from services.ledger.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    PROCESSOR_NAME,
    PROJECTOR_NAME,
    SCHEMA,
    LedgerSettings,
    load_catalogs,
)
from shared.contracts.base import utc_now
from shared.kafka.log_end import LogEndProbe
from shared.kafka.partition_handler import PartitionHandler
from shared.kafka.partition_owner import PartitionOwner
from shared.kafka.producer import create_producer
from shared.kafka.subscriber import subscribe_partition_owner
from shared.observability.health import Readiness
from shared.postgres.pool import create_pool
from shared.settings import PlatformSettings
from shared.worker import StopSignal, Worker


async def build_processor(settings: PlatformSettings, stop: StopSignal) -> Worker:
    """ledger-processor: the partition owner that decides `ledger.commands`."""
    ledger_settings = LedgerSettings()
    catalogs = load_catalogs(ledger_settings.ledger_catalog_file)
    handler = RecordEntryHandler(
        catalogs=catalogs,
        store=DecisionStore(),
        events_topic=settings.topic(EVENTS_TOPIC),
        clock=utc_now,
    )
    return await _build(
        settings,
        stop,
        ledger_settings=ledger_settings,
        name=PROCESSOR_NAME,
        topic=COMMANDS_TOPIC,
        handler=handler,
        description="Decides RecordEntry commands against each account and nonce.",
    )


async def build_projector(settings: PlatformSettings, stop: StopSignal) -> Worker:
    """ledger-projector: folds `ledger.events` into ledger.balances and ledger.entries."""
    return await _build(
        settings,
        stop,
        ledger_settings=LedgerSettings(),
        name=PROJECTOR_NAME,
        topic=EVENTS_TOPIC,
        handler=LedgerViewProjector(ViewStore()),
        description="Builds the balance and entry read models.",
    )


async def _build(
    settings: PlatformSettings,
    stop: StopSignal,
    *,
    ledger_settings: LedgerSettings,
    name: str,
    topic: str,
    handler: PartitionHandler,
    description: str,
) -> Worker:
    pool = await create_pool(settings.postgres_dsn, application_name=name)
    producer = create_producer(settings.kafka_bootstrap_servers, client_id=name)
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=name,
        logger=logging.getLogger(f"faststream.{name}"),
    )
    log_end = LogEndProbe(settings.kafka_bootstrap_servers, client_id=f"{name}-log-end")
    owner = PartitionOwner(
        consumer_name=name,
        schema=SCHEMA,
        pool=pool,
        producer=producer,
        handler=handler,
        on_fatal=stop.fail,
        log_end=log_end,
    )
    subscribe_partition_owner(
        broker,
        owner,
        topics=[settings.topic(topic)],
        group_id=settings.group(name),
        description=description,
        max_records=ledger_settings.ledger_batch_max_records,
        session_timeout_milliseconds=ledger_settings.ledger_session_timeout_milliseconds,
    )

    async def postgres() -> None:
        await pool.fetchval("SELECT 1")

    async def partitions() -> dict[str, list[int]]:
        return {"owned": sorted(tp.partition for tp in owner.owned_partitions)}

    readiness = Readiness({"postgres": postgres, "partitions": partitions}, process=name)
    return Worker(
        name, broker, pool, producer, [owner], readiness,
        extra_start=[log_end.start], extra_stop=[log_end.stop],
    )  # fmt: skip
