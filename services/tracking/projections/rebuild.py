"""`ledgerbus projections rebuild tracking`: the platform's rebuild of the tracking read model."""

from collections.abc import Callable

from services.tracking.projections.tracking_view import TRACKING_PROJECTIONS
from shared.engine.rebuild import RebuildResult, rebuild
from shared.settings import PlatformSettings


async def run_rebuild(
    settings: PlatformSettings,
    on_total: Callable[[int], None],
    on_progress: Callable[[int], None],
) -> RebuildResult:
    return await rebuild(
        settings.postgres_dsn, settings.kafka_bootstrap_servers, TRACKING_PROJECTIONS,
        topic_prefix=settings.ledgerbus_topic_prefix, on_total=on_total, on_progress=on_progress,
    )  # fmt: skip
