"""Wiring for the tracking processes. Nothing connects until a builder is awaited."""

from typing import Any

from services.tracking.adapters.decision_state import TrackingState
from services.tracking.handlers.daily_reward import daily_reward
from services.tracking.handlers.register_entry import register_entries
from services.tracking.projections.tracking_view import TRACKING_PROJECTIONS
from services.tracking.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    PROCESSOR_NAME,
    PROJECTOR_NAME,
    SCHEMA,
    TrackingSettings,
)
from shared.contracts.tracking import (
    TRACKING_COMMANDS,
    TRACKING_EVENTS,
    TRACKING_SOURCE,
    EntryRegistered,
    RegisterEntry,
)
from shared.engine.processor import Processor, ProcessorSpec, TopicInput
from shared.engine.projector import Projector
from shared.engine.workers import build_owner_worker
from shared.settings import PlatformSettings
from shared.worker import StopSignal, Worker


def _user_of_command(command: RegisterEntry) -> str:
    return str(command.user_id)


def _user_of(data: Any) -> str | None:
    """Who may read the stored answer of a refused command: the user it names, if any."""
    value = data.get("user_id")
    return value if isinstance(value, str) else None


def tracking_processor() -> ProcessorSpec[TrackingState]:
    """tracking-processor: registers entries, and rewards each user's first entry of a day."""
    return ProcessorSpec(
        name=PROCESSOR_NAME,
        schema=SCHEMA,
        source=TRACKING_SOURCE,
        inputs=(
            TopicInput(COMMANDS_TOPIC, TRACKING_COMMANDS, aggregate_key=_user_of_command),
            TopicInput(EVENTS_TOPIC, TRACKING_EVENTS),
        ),
        handlers={RegisterEntry: register_entries, EntryRegistered: daily_reward},
        new_state=TrackingState,
        scope_of=_user_of,
    )


async def build_processor(settings: PlatformSettings, stop: StopSignal) -> Worker:
    processor = Processor(tracking_processor(), settings.topic)
    return await build_owner_worker(
        settings, stop, name=PROCESSOR_NAME, schema=SCHEMA, topics=processor.topics,
        handler=processor, sweeps_deadlines=False,
        batch_max_records=TrackingSettings().tracking_batch_max_records,
        description="Registers tracking entries and sends each user's daily reward.",
    )  # fmt: skip


async def build_projector(settings: PlatformSettings, stop: StopSignal) -> Worker:
    """tracking-projector: folds `tracking.events` into tracking.users and tracking.entries."""
    return await build_owner_worker(
        settings, stop, name=PROJECTOR_NAME, schema=SCHEMA,
        topics=[settings.topic(EVENTS_TOPIC)], handler=Projector(TRACKING_PROJECTIONS),
        sweeps_deadlines=False,
        batch_max_records=TrackingSettings().tracking_batch_max_records,
        description="Builds the entry and year-document read models.",
    )  # fmt: skip
