"""The analytics answers as OpenAPI shows them. Every answer carries `as_of`: the aggregates
include every event the log held at that time (the routes write the answers directly; these
models document them)."""

from datetime import date, datetime

from pydantic import Field

from shared.contracts.base import ContractModel


class HighestDay(ContractModel):
    date: date
    count: int


class Totals(ContractModel):
    credit: int = Field(description="Paisa.")
    debit: int = Field(description="Paisa.")


class SummaryResponse(ContractModel):
    average_transaction_value: float = Field(
        description="Paisa, a JSON number with exactly two decimal places (the exact average"
        " rounded half to even); 0.00 without transactions."
    )
    highest_transaction_day: HighestDay | None = Field(
        description="The day with the most transactions, the earliest on a tie; null if none."
    )
    transaction_count: int
    totals: Totals
    as_of: datetime


class AverageResponse(ContractModel):
    user_id: str
    average_transaction_value: float = Field(description="As in the summary.")
    transaction_count: int
    as_of: datetime


class HighestDayResponse(ContractModel):
    user_id: str
    highest_transaction_day: date
    count: int
    as_of: datetime


class TotalsResponse(ContractModel):
    user_id: str
    start_date: date | None
    end_date: date | None
    credit: int
    debit: int
    as_of: datetime


class TypeCounts(ContractModel):
    food: int
    workout: int
    sleep: int
    meditation: int


class YearCounts(ContractModel):
    entries: int
    by_type: TypeCounts


class TrackingStatisticsResponse(ContractModel):
    user_id: str
    year: int | None
    entries: int
    by_type: TypeCounts
    years: dict[str, YearCounts]
    as_of: datetime


class AppLedgerResponse(ContractModel):
    app: str
    entries: int
    rejected: int
    credited: int
    debited: int
    net: int
    operations: dict[str, int]
    as_of: datetime
