"""What the tracking routes need, built by the gateway at start, and how routes get it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.tracking.adapters.read_models import TrackingReads
from services.tracking.projections.tracking_view import POSITIONS_CHANNEL
from services.tracking.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    PROCESSOR_NAME,
    PROJECTOR_NAME,
    SCHEMA,
)
from shared.engine.inbox import ReplyReader
from shared.http.commands import CommandSender
from shared.http.gateway_context import GatewayContext
from shared.http.read_positions import ReadPositions
from shared.http.service_wiring import ServiceTopics, commands_and_reads
from shared.settings import PlatformSettings

TRACKING_TOPICS = ServiceTopics(
    "tracking", SCHEMA, PROCESSOR_NAME, PROJECTOR_NAME, COMMANDS_TOPIC, EVENTS_TOPIC,
    POSITIONS_CHANNEL,
)  # fmt: skip


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
        shared = await commands_and_reads(context, TRACKING_TOPICS)
        context.app.state.tracking = TrackingHttp(
            reads=TrackingReads(context.pool), replies=shared.replies, sender=shared.sender,
            positions=shared.positions,
        )  # fmt: skip

    return open_tracking_http
