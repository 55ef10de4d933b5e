"""The analytics summary computed the plain way, for tests to compare the aggregates with."""

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

Movement = tuple[date, str, int]
"""A transaction: its UTC day, `credit` or `debit`, and its amount in paisa."""


def brute_summary(movements: list[Movement], since: date | None = None,
                  until: date | None = None) -> dict[str, Any]:  # fmt: skip
    """The contract's summary computed the plain way, for comparison."""
    chosen = [m for m in movements
              if (since is None or m[0] >= since) and (until is None or m[0] <= until)]  # fmt: skip
    per_day: dict[date, int] = {}
    for day, _, _ in chosen:
        per_day[day] = per_day.get(day, 0) + 1
    highest = None
    if per_day:
        best = max(per_day.values())
        day = min(d for d, n in per_day.items() if n == best)
        highest = {"date": day.isoformat(), "count": best}
    total = sum(amount for _, _, amount in chosen)
    average = (Decimal(total) / Decimal(len(chosen))) if chosen else Decimal(0)
    return {
        "average_transaction_value": float(average.quantize(Decimal("0.01"), ROUND_HALF_EVEN)),
        "highest_transaction_day": highest, "transaction_count": len(chosen),
        "totals": {"credit": sum(a for _, d, a in chosen if d == "credit"),
                   "debit": sum(a for _, d, a in chosen if d == "debit")},
    }  # fmt: skip
