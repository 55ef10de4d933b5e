"""The transaction summary of one user over an optional range of UTC days (CONTRACT.md,
"Analytics"), added up from the day buckets the aggregator keeps (inside Redis, one round
trip): nothing is recomputed from events."""

from datetime import date
from typing import Any
from uuid import UUID

from services.analytics.adapters.redis_reads import AnalyticsReads
from services.analytics.domain.answers import summary_body
from services.analytics.domain.summary import Summary


async def user_summary(
    reads: AnalyticsReads, user_id: UUID, since: date | None, until: date | None
) -> tuple[Summary, dict[str, Any]]:
    """The summary, and the contract's answer for it (`average_transaction_value` as exact
    number text, `as_of` the time the aggregates stand for)."""
    summary, as_of = await reads.summary(str(user_id), since, until)
    return summary, summary_body(summary, as_of)
