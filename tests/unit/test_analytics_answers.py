"""The summary's answer: exact averages rounded half to even, a null highest day when there
are no transactions."""

from datetime import UTC, date, datetime
from fractions import Fraction

from services.analytics.domain.answers import average_text, summary_body
from services.analytics.domain.summary import Summary

AS_OF = datetime(2026, 11, 23, tzinfo=UTC)


def test_averages_round_half_to_even_at_hundredths() -> None:
    assert average_text(Fraction(10, 4)) == "2.50"
    assert average_text(Fraction(1, 3)) == "0.33"
    assert average_text(Fraction(1, 200)) == "0.00"  # 0.005 to even
    assert average_text(Fraction(3, 200)) == "0.02"  # 0.015 to even
    assert average_text(Fraction(10**15, 1)) == "1000000000000000.00"  # no float on the way


def test_the_summary_answer() -> None:
    summary = Summary(3, 500, 100, Fraction(600, 3), (date(2026, 11, 2), 2))
    body = summary_body(summary, AS_OF)
    assert body == {
        "average_transaction_value": "200.00",
        "highest_transaction_day": {"date": "2026-11-02", "count": 2},
        "transaction_count": 3,
        "totals": {"credit": 500, "debit": 100},
        "as_of": AS_OF,
    }
    empty = summary_body(Summary(0, 0, 0, Fraction(0), None), AS_OF)
    assert (empty["transaction_count"], empty["highest_transaction_day"]) == (0, None)
