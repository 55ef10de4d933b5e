"""An app's credit-ledger totals: entries recorded and refused, credits and debits moved, and
entries per operation, from the aggregator's counters."""

from typing import Any

from services.analytics.adapters.redis_reads import AnalyticsReads


async def app_ledger(reads: AnalyticsReads, app: str) -> dict[str, Any]:
    counters, as_of = await reads.counters(f"app:{app}")
    operations = {
        name.removeprefix("operation:"): count
        for name, count in sorted(counters.items())
        if name.startswith("operation:")
    }
    credited, debited = counters.get("credited", 0), counters.get("debited", 0)
    return {
        "app": app, "entries": counters.get("entries", 0), "rejected": counters.get("rejected", 0),
        "credited": credited, "debited": debited, "net": credited - debited,
        "operations": operations, "as_of": as_of,
    }  # fmt: skip
