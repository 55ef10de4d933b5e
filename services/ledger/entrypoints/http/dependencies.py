"""What the ledger's routes need, built by the gateway at start, and how routes get it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.ledger.adapters.read_models import LedgerReads
from services.ledger.domain.catalog import Catalogs
from services.ledger.projections.ledger_view import POSITIONS_CHANNEL
from services.ledger.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    PROCESSOR_NAME,
    SCHEMA,
    LedgerSettings,
    load_catalogs,
)
from shared.engine.inbox import ReplyReader, replies_channel
from shared.http.commands import GATEWAY_SOURCE, CommandSender, ReplyWaiter
from shared.http.gateway_context import GatewayContext
from shared.http.read_positions import ReadPositions
from shared.read_cache import ReadCache
from shared.settings import PlatformSettings
from shared.waiters import CheckpointWatcher


@dataclass(frozen=True, slots=True)
class LedgerHttp:
    catalogs: Catalogs
    reads: LedgerReads
    replies: ReplyReader
    sender: CommandSender
    checkpoints: CheckpointWatcher
    events_partitions: int
    positions: ReadPositions
    """`min_position` waits on the read model; a position never written is refused at once."""
    balances: ReadCache = field(default_factory=ReadCache)


async def _ledger(request: Request) -> LedgerHttp:
    # async on purpose: FastAPI runs a plain `def` dependency in a thread, a hop per request.
    ledger = request.app.state.ledger
    assert isinstance(ledger, LedgerHttp)
    return ledger


Ledger = Annotated[LedgerHttp, Depends(_ledger)]


def configure(settings: PlatformSettings) -> Callable[[GatewayContext], Awaitable[None]]:
    """Read the catalogs when the gateway is created, so a bad catalog stops it at once."""
    catalogs = load_catalogs(LedgerSettings().ledger_catalog_file)

    async def open_ledger(context: GatewayContext) -> None:
        events_partitions = len(await context.lag.end_offsets(settings.topic(EVENTS_TOPIC)))
        context.app.state.ledger = _ledger_http(context, catalogs, events_partitions)

    return open_ledger


def _ledger_http(context: GatewayContext, catalogs: Catalogs, events_partitions: int) -> LedgerHttp:
    """Build the routes' dependencies; subscribes to the ledger's channels on the hub."""
    settings, pool, hub = context.settings, context.pool, context.hub
    reads = LedgerReads(pool, settings.topic(EVENTS_TOPIC))
    replies = ReplyReader(pool, SCHEMA, PROCESSOR_NAME)
    waiter = ReplyWaiter(hub, replies_channel(SCHEMA), replies, GATEWAY_SOURCE)
    sender = CommandSender(
        service="ledger", publisher=context.publisher, waiter=waiter,
        topic=settings.topic(COMMANDS_TOPIC),
        timeout_seconds=settings.ledgerbus_command_timeout_seconds,
    )  # fmt: skip
    checkpoints = CheckpointWatcher(hub, POSITIONS_CHANNEL, reads.checkpoints)
    positions = ReadPositions(
        "ledger read model", checkpoints, context.lag, settings.topic(EVENTS_TOPIC),
        EVENTS_TOPIC, events_partitions,
    )  # fmt: skip
    return LedgerHttp(
        catalogs=catalogs,
        reads=reads,
        replies=replies,
        sender=sender,
        checkpoints=checkpoints,
        events_partitions=events_partitions,
        positions=positions,
    )
