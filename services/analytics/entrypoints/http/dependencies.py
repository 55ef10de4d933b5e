"""What the analytics routes need, built by the gateway at start, and how routes get it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.analytics.adapters.redis_reads import AnalyticsReads
from services.analytics.settings import key_prefix
from shared.http.gateway_context import GatewayContext
from shared.kafka.lag import LagReader
from shared.settings import PlatformSettings


@dataclass(frozen=True, slots=True)
class AnalyticsHttp:
    reads: AnalyticsReads
    lag: LagReader
    known_apps: frozenset[str]
    topic: Callable[[str], str]
    """A topic's name on the broker (with any prefix)."""


async def _analytics(request: Request) -> AnalyticsHttp:
    # async on purpose: FastAPI runs a plain `def` dependency in a thread, a hop per request.
    analytics = request.app.state.analytics
    assert isinstance(analytics, AnalyticsHttp)
    return analytics


AnalyticsDependencies = Annotated[AnalyticsHttp, Depends(_analytics)]


def configure(settings: PlatformSettings) -> Callable[[GatewayContext], Awaitable[None]]:
    async def open_analytics_http(context: GatewayContext) -> None:
        context.app.state.analytics = AnalyticsHttp(
            reads=AnalyticsReads(context.redis, key_prefix(settings)), lag=context.lag,
            known_apps=frozenset(settings.app_keys.values()), topic=settings.topic,
        )  # fmt: skip

    return open_analytics_http
