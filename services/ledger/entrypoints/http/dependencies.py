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
    PROJECTOR_NAME,
    SCHEMA,
    LedgerSettings,
    load_catalogs,
)
from shared.engine.inbox import ReplyReader
from shared.http.commands import CommandSender
from shared.http.gateway_context import GatewayContext
from shared.http.read_positions import ReadPositions
from shared.http.service_wiring import ServiceTopics, commands_and_reads
from shared.read_cache import ReadCache
from shared.settings import PlatformSettings
from shared.waiters import CheckpointWatcher

LEDGER_TOPICS = ServiceTopics(
    "ledger", SCHEMA, PROCESSOR_NAME, PROJECTOR_NAME, COMMANDS_TOPIC, EVENTS_TOPIC,
    POSITIONS_CHANNEL,
)  # fmt: skip


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
        shared = await commands_and_reads(context, LEDGER_TOPICS)
        context.app.state.ledger = LedgerHttp(
            catalogs=catalogs, reads=LedgerReads(context.pool, settings.topic(EVENTS_TOPIC)),
            replies=shared.replies, sender=shared.sender, checkpoints=shared.checkpoints,
            events_partitions=shared.events_partitions, positions=shared.positions,
        )  # fmt: skip

    return open_ledger
