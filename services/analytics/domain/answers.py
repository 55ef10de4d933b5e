"""The summary as the contract answers it (CONTRACT.md, "Analytics"): amounts in paisa, the
average to two decimal places (half to even, so that no rounding direction is favoured), the
highest day with its count or null, and the time the answer stands for."""

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from services.analytics.domain.summary import Summary

AVERAGE_PLACES = Decimal("0.01")


def average_text(average: Fraction) -> str:
    """The exact average rounded to hundredths of a paisa, as JSON number text."""
    value = Decimal(average.numerator) / Decimal(average.denominator)
    return str(value.quantize(AVERAGE_PLACES, rounding=ROUND_HALF_EVEN))


def summary_body(summary: Summary, as_of: datetime) -> dict[str, Any]:
    """The answer of `GET /analytics/users/{id}/summary`; the average is returned as text for
    the route to write as an exact JSON number."""
    highest = summary.highest_transaction_day
    return {
        "average_transaction_value": average_text(summary.average_transaction_value),
        "highest_transaction_day": (
            None if highest is None else {"date": highest[0].isoformat(), "count": highest[1]}
        ),
        "transaction_count": summary.transaction_count,
        "totals": {"credit": summary.credit, "debit": summary.debit},
        "as_of": as_of,
    }
