"""What the analytics routes need, built by the gateway at start, and how routes get it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from services.analytics.adapters.progress import aggregates_progress
from services.analytics.adapters.redis_reads import AnalyticsReads
from services.analytics.settings import CONSUMED_TOPICS, key_prefix
from shared.http.gateway_context import GatewayContext
from shared.kafka.lag import LagReader
from shared.observability.consumers import ProgressMemory
from shared.settings import PlatformSettings


@dataclass(frozen=True, slots=True)
class AnalyticsHttp:
    reads: AnalyticsReads
    lag: LagReader
    known_apps: frozenset[str]
    topic: Callable[[str], str]
    """A topic's name on the broker (with any prefix)."""
    progress: ProgressMemory = field(default_factory=ProgressMemory)
    """What `/ready` saw of each lagging partition, to tell a stalled one."""


async def aggregates_ready(app: FastAPI) -> dict[str, Any]:
    """The gateway's `/ready` check of the aggregates (see adapters/progress.py)."""
    analytics = app.state.analytics
    assert isinstance(analytics, AnalyticsHttp)
    topics = [analytics.topic(name) for name in CONSUMED_TOPICS]
    return await aggregates_progress(
        analytics.reads.redis, analytics.reads.prefix, analytics.lag, topics, analytics.progress
    )


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
