"""What the tracking routes need, built by the gateway at start, and how routes get it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.tracking.adapters.read_models import TrackingReads
from services.tracking.projections.tracking_view import POSITIONS_CHANNEL
from services.tracking.settings import COMMANDS_TOPIC, EVENTS_TOPIC, PROCESSOR_NAME, SCHEMA
from shared.engine.inbox import ReplyReader, replies_channel
from shared.http.commands import GATEWAY_SOURCE, CommandSender, ReplyWaiter
from shared.http.gateway_context import GatewayContext
from shared.http.read_positions import ReadPositions
from shared.settings import PlatformSettings
from shared.waiters import CheckpointWatcher


@dataclass(frozen=True, slots=True)
class TrackingHttp:
    reads: TrackingReads
    replies: ReplyReader
    sender: CommandSender
    positions: ReadPositions


async def _tracking(request: Request) -> TrackingHttp:
    # async on purpose: FastAPI runs a plain `def` dependency in a thread, a hop per request.
    tracking = request.app.state.tracking
    assert isinstance(tracking, TrackingHttp)
    return tracking


TrackingDependencies = Annotated[TrackingHttp, Depends(_tracking)]


def configure(settings: PlatformSettings) -> Callable[[GatewayContext], Awaitable[None]]:
    async def open_tracking_http(context: GatewayContext) -> None:
        partitions = len(await context.lag.end_offsets(settings.topic(EVENTS_TOPIC)))
        context.app.state.tracking = _tracking_http(context, partitions)

    return open_tracking_http


def _tracking_http(context: GatewayContext, events_partitions: int) -> TrackingHttp:
    settings, pool, hub = context.settings, context.pool, context.hub
    reads = TrackingReads(pool, settings.topic(EVENTS_TOPIC))
    replies = ReplyReader(pool, SCHEMA, PROCESSOR_NAME)
    waiter = ReplyWaiter(hub, replies_channel(SCHEMA), replies, GATEWAY_SOURCE)
    sender = CommandSender(
        service="tracking", publisher=context.publisher, waiter=waiter,
        topic=settings.topic(COMMANDS_TOPIC),
        timeout_seconds=settings.ledgerbus_command_timeout_seconds,
    )  # fmt: skip
    checkpoints = CheckpointWatcher(hub, POSITIONS_CHANNEL, reads.checkpoints)
    positions = ReadPositions(
        "tracking read model", checkpoints, context.lag, settings.topic(EVENTS_TOPIC),
        EVENTS_TOPIC, events_partitions,
    )  # fmt: skip
    return TrackingHttp(reads=reads, replies=replies, sender=sender, positions=positions)
