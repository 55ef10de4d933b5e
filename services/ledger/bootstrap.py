"""Wiring for the ledger's processes. Nothing connects until a builder is awaited."""

from collections.abc import Mapping
from typing import Any

from services.ledger.adapters.decision_state import LedgerState
from services.ledger.domain.catalog import Catalogs
from services.ledger.handlers.record_entry import RecordEntries
from services.ledger.projections.ledger_view import LEDGER_PROJECTIONS
from services.ledger.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    PROCESSOR_NAME,
    PROJECTOR_NAME,
    SCHEMA,
    LedgerSettings,
    load_catalogs,
)
from shared.contracts.ledger import LEDGER_COMMANDS, LEDGER_SOURCE, RecordEntry, aggregate_key
from shared.engine.processor import Processor, ProcessorSpec, TopicInput
from shared.engine.projector import Projector
from shared.engine.workers import build_owner_worker
from shared.settings import PlatformSettings
from shared.worker import StopSignal, Worker


def _app_of(data: Mapping[str, Any]) -> str | None:
    """Who may read the stored answer of a refused command: the app it names, if any."""
    app = data.get("app")
    return app if isinstance(app, str) else None


def _aggregate_of(command: RecordEntry) -> str:
    return aggregate_key(command.app, command.owner_id)


def ledger_processor(catalogs: Catalogs) -> ProcessorSpec[LedgerState]:
    """ledger-processor: decides `ledger.record_entry.v1` against each account and nonce."""
    return ProcessorSpec(
        name=PROCESSOR_NAME,
        schema=SCHEMA,
        source=LEDGER_SOURCE,
        inputs=(TopicInput(COMMANDS_TOPIC, LEDGER_COMMANDS, aggregate_key=_aggregate_of),),
        handlers={RecordEntry: RecordEntries(catalogs)},
        new_state=LedgerState,
        scope_of=_app_of,
    )


async def build_processor(settings: PlatformSettings, stop: StopSignal) -> Worker:
    ledger_settings = LedgerSettings()
    spec = ledger_processor(load_catalogs(ledger_settings.ledger_catalog_file))
    processor = Processor(spec, settings.topic)
    return await build_owner_worker(
        settings, stop, name=PROCESSOR_NAME, schema=SCHEMA, topics=processor.topics,
        handler=processor, sweeps_deadlines=True,
        batch_max_records=ledger_settings.ledger_batch_max_records,
        description="Decides RecordEntry commands against each account and nonce.",
    )  # fmt: skip


async def build_projector(settings: PlatformSettings, stop: StopSignal) -> Worker:
    """ledger-projector: folds `ledger.events` into ledger.balances and ledger.entries."""
    ledger_settings = LedgerSettings()
    return await build_owner_worker(
        settings, stop, name=PROJECTOR_NAME, schema=SCHEMA,
        topics=[settings.topic(EVENTS_TOPIC)], handler=Projector(LEDGER_PROJECTIONS),
        sweeps_deadlines=False, batch_max_records=ledger_settings.ledger_batch_max_records,
        description="Builds the balance and entry read models.",
    )  # fmt: skip
