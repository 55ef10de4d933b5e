"""The counter service's wiring: its processor, its projections (two folds in one projector)
and its worker entry (`python -m tests.counter.service processor|projector`)."""

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from shared.engine.processor import ProcessorSpec, TopicInput
from shared.engine.projection import Applied, FoldResult, ProjectionSet
from shared.engine.tables import Table
from shared.engine.workers import build_owner_worker
from shared.settings import PlatformSettings
from shared.worker import StopSignal, Worker, run_worker
from tests.counter import handlers
from tests.counter.contracts import (
    COMMANDS_TOPIC,
    COUNTER_COMMANDS,
    COUNTER_EVENTS,
    EVENTS_TOPIC,
    SOURCE,
    ApplyCredit,
    CancelCredit,
    CreditApplied,
    CreditRefused,
    Deposit,
    Deposited,
    ExpireMove,
    Move,
    MoveDebited,
    MoveSettled,
    SettleMove,
)
from tests.counter.state import CounterState

SCHEMA = "counter"
PROCESSOR = "counter-processor"
PROJECTOR = "counter-projector"
MIGRATIONS = Path(__file__).with_name("migrations")
POSITIONS_CHANNEL = "counter_positions"
BATCH_MAX_RECORDS = 500


def _key_of(command: Any) -> str:
    if isinstance(command, Deposit):
        return command.counter
    if isinstance(command, Move | ExpireMove | SettleMove):
        return command.source
    assert isinstance(command, ApplyCredit | CancelCredit), type(command)
    return command.target


PROCESSOR_SPEC = ProcessorSpec(
    name=PROCESSOR,
    schema=SCHEMA,
    source=SOURCE,
    inputs=(
        TopicInput(COMMANDS_TOPIC, COUNTER_COMMANDS, aggregate_key=_key_of),
        TopicInput(EVENTS_TOPIC, COUNTER_EVENTS),
    ),
    handlers={
        Deposit: handlers.deposit,
        Move: handlers.move,
        ApplyCredit: handlers.apply_credit,
        CancelCredit: handlers.apply_credit,
        ExpireMove: handlers.expire_move,
        SettleMove: handlers.settle_move,
        CreditApplied: handlers.settle_on_event,
        CreditRefused: handlers.settle_on_event,
        Deposited: handlers.ignore,
        MoveDebited: handlers.ignore,
        MoveSettled: handlers.ignore,
    },
    new_state=CounterState,
    on_poison=handlers.on_poison,
)


class BalanceRow(NamedTuple):
    counter: str
    balance: int
    sequence: int
    position: str


class MoveStatusRow(NamedTuple):
    move_id: str
    source: str
    amount: int
    status: str


BALANCES = Table("balances", BalanceRow, ("text", "bigint", "bigint", "text"), ("counter",))
MOVE_STATUSES = Table(
    "move_statuses", MoveStatusRow, ("text", "text", "bigint", "text"), ("move_id",)
)


def stream_of(event: Any) -> tuple[str, int]:
    if isinstance(event, Deposited):
        return event.counter, event.sequence
    if isinstance(event, CreditApplied | CreditRefused):
        return event.target, event.sequence
    assert isinstance(event, MoveDebited | MoveSettled), type(event)
    return event.source, event.sequence


class Balances:
    state, appended = BALANCES, ()

    def state_key(self, event: Any) -> tuple[Any, ...] | None:
        return (stream_of(event)[0],)

    def apply(self, state: Any | None, event: Any, applied: Applied) -> FoldResult:
        counter, sequence = stream_of(event)
        balance = state.balance if state is not None else 0
        if isinstance(event, Deposited | MoveDebited | CreditApplied | MoveSettled):
            balance = event.balance
        return FoldResult(BalanceRow(counter, balance, sequence, applied.position))


class MoveStatuses:
    state, appended = MOVE_STATUSES, ()

    def state_key(self, event: Any) -> tuple[Any, ...] | None:
        return (event.move_id,) if isinstance(event, MoveDebited | MoveSettled) else None

    def apply(self, state: Any | None, event: Any, applied: Applied) -> FoldResult:
        status = event.outcome if isinstance(event, MoveSettled) else "pending"
        return FoldResult(MoveStatusRow(event.move_id, event.source, event.amount, status))


PROJECTIONS = ProjectionSet(
    consumer=PROJECTOR,
    schema=SCHEMA,
    topic=EVENTS_TOPIC,
    registry=COUNTER_EVENTS,
    stream_of=stream_of,
    time_of=lambda _: datetime.now(UTC),
    folds=(Balances(), MoveStatuses()),
    positions_channel=POSITIONS_CHANNEL,
)


async def build_processor(settings: PlatformSettings, stop: StopSignal) -> Worker:
    from shared.engine.processor import Processor

    processor = Processor(PROCESSOR_SPEC, settings.topic)
    return await build_owner_worker(
        settings,
        stop,
        name=PROCESSOR,
        schema=SCHEMA,
        topics=processor.topics,
        handler=processor,
        sweeps_deadlines=True,
        batch_max_records=BATCH_MAX_RECORDS,
        description="Decides counter commands and reacts to counter events.",
    )


async def build_projector(settings: PlatformSettings, stop: StopSignal) -> Worker:
    from shared.engine.projector import Projector

    return await build_owner_worker(
        settings,
        stop,
        name=PROJECTOR,
        schema=SCHEMA,
        topics=[settings.topic(EVENTS_TOPIC)],
        handler=Projector(PROJECTIONS),
        sweeps_deadlines=False,
        batch_max_records=BATCH_MAX_RECORDS,
        description="Folds counter events into balances and move statuses.",
    )


if __name__ == "__main__":
    role = sys.argv[1]
    builder = {"processor": (PROCESSOR, build_processor), "projector": (PROJECTOR, build_projector)}
    name, build = builder[role]
    sys.exit(run_worker(name, build))
