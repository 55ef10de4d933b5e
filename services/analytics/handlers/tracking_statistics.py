"""A user's tracking entries counted per year and type, from the aggregator's counters."""

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from services.analytics.adapters.redis_reads import AnalyticsReads
from shared.contracts.tracking import ENTRY_TYPES


def _year_body(counts: Mapping[str, int]) -> dict[str, Any]:
    by_type = {entry_type: counts.get(entry_type, 0) for entry_type in ENTRY_TYPES}
    return {"entries": sum(by_type.values()), "by_type": by_type}


async def tracking_statistics(
    reads: AnalyticsReads, user_id: UUID, year: int | None
) -> dict[str, Any]:
    counters, as_of = await reads.counters(f"tracking:{user_id}")
    years: dict[int, dict[str, int]] = {}
    for name, count in counters.items():
        year_text, _, entry_type = name.partition(":")
        years.setdefault(int(year_text), {})[entry_type] = count
    if year is not None:
        years = {year: years.get(year, {})}
    every: dict[str, int] = {
        entry_type: sum(counts.get(entry_type, 0) for counts in years.values())
        for entry_type in ENTRY_TYPES
    }
    return {
        "user_id": str(user_id), "year": year, **_year_body(every),
        "years": {str(key): _year_body(years[key]) for key in sorted(years)}, "as_of": as_of,
    }  # fmt: skip
