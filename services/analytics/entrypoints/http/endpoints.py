"""The analytics routes (CONTRACT.md, "Analytics"): a user's transaction summary, the seed's three
routes, tracking statistics, and an app's ledger totals, all read from the Redis aggregates.

A user reads only their own (another user's id answers 404); the operator reads everything; an
app's key reads its own ledger totals. Every answer carries `as_of`. While Redis is down the
answer is 503 `dependency_unavailable`, and while it holds no live aggregates (it lost them and
the aggregator is rebuilding) 503 `analytics_rebuilding`, both with `Retry-After`: never a
number computed from partial data.
"""

from datetime import date
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from services.analytics.adapters.redis_reads import NotLiveError
from services.analytics.entrypoints.http.dependencies import AnalyticsDependencies, AnalyticsHttp
from services.analytics.entrypoints.http.schemas import (
    AppLedgerResponse,
    AverageResponse,
    HighestDayResponse,
    SummaryResponse,
    TotalsResponse,
    TrackingStatisticsResponse,
)
from services.analytics.handlers.app_ledger import app_ledger
from services.analytics.handlers.tracking_statistics import tracking_statistics
from services.analytics.handlers.user_summary import user_summary
from services.analytics.settings import (
    LEDGER_EVENTS_TOPIC,
    TRACKING_EVENTS_TOPIC,
    WALLET_EVENTS_TOPIC,
)
from shared.contracts.base import AppName
from shared.http.auth import AppOrOperator, UserOrOperator
from shared.http.errors import DomainHTTPError, json_response
from shared.http.schemas import Day, MinPosition, Since, Until, error
from shared.kafka.positions import PositionError, never_written, parse_position
from shared.logs import get_logger
from shared.waiters import READ_WAIT_TIMEOUT_SECONDS

logger = get_logger(__name__)
REBUILDING_RETRY_AFTER_SECONDS = 5
NOT_CAUGHT_UP_RETRY_AFTER_SECONDS = 1
YEAR_MIN, YEAR_MAX = 1, 9999

router = APIRouter(tags=["analytics"])
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error("missing_token, invalid_token or invalid_operator_token."),
    404: error("user_not_found: another user's id."),
    422: error("invalid_range or invalid_position (or FastAPI's shape)."),
    503: error("analytics_rebuilding or dependency_unavailable (Redis), with Retry-After."),
    504: error("not_caught_up: the aggregates did not reach min_position within 5 s."),
}
SEED_ERRORS = {**READ_ERRORS, 404: error("user_not_found, or no_transactions (the seed's 404).")}


def _readable(reader: UUID | None, user_id: UUID) -> None:
    if reader is not None and reader != user_id:
        raise DomainHTTPError(404, "user_not_found", "There is no such user for this caller.")


def _range(since: date | None, until: date | None) -> None:
    if since is not None and until is not None and since > until:
        raise DomainHTTPError(422, "invalid_range", "The first day is after the last day.")


async def _reached(analytics: AnalyticsHttp, topic_name: str, min_position: str | None) -> None:
    """Wait (up to 5 s) until the aggregates applied a position of `topic_name`."""
    if min_position is None:
        return
    try:
        wanted = parse_position(min_position)
    except PositionError as problem:
        raise DomainHTTPError(422, "invalid_position", str(problem)) from problem
    topic = analytics.topic(topic_name)
    ends = await analytics.lag.end_offsets(topic)
    beyond = [p for p in wanted if p not in ends] or never_written(wanted, ends, {})
    if beyond:
        logger.warning("position refused as never written", wanted=wanted, ends=ends)
        raise DomainHTTPError(
            422, "invalid_position",
            f"{min_position} was never written to {topic_name} (partition {beyond[0]}).",
        )  # fmt: skip
    if not await analytics.reads.wait_for(topic, len(ends), wanted, READ_WAIT_TIMEOUT_SECONDS):
        raise DomainHTTPError(
            504, "not_caught_up",
            f"The analytics aggregates did not reach {min_position} within"
            f" {READ_WAIT_TIMEOUT_SECONDS:g} s; retry shortly.",
            headers={"Retry-After": str(NOT_CAUGHT_UP_RETRY_AFTER_SECONDS)},
        )  # fmt: skip


def _rebuilding(problem: NotLiveError) -> DomainHTTPError:
    detail = (
        "The analytics aggregates are being rebuilt from the log; retry shortly."
        if problem.building
        else "No analytics aggregates yet: the aggregator has not built them; retry shortly."
    )
    return DomainHTTPError(
        503, "analytics_rebuilding", detail,
        headers={"Retry-After": str(REBUILDING_RETRY_AFTER_SECONDS)},
    )  # fmt: skip


async def _summary(
    analytics: AnalyticsHttp, user_id: UUID, since: date | None, until: date | None,
    min_position: str | None,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    _range(since, until)
    try:
        await _reached(analytics, WALLET_EVENTS_TOPIC, min_position)
        return await user_summary(analytics.reads, user_id, since, until)
    except NotLiveError as problem:
        raise _rebuilding(problem) from problem


@router.get(
    "/analytics/users/{user_id}/summary", summary="A user's transaction summary",
    response_model=SummaryResponse, responses=READ_ERRORS,
)  # fmt: skip
async def summary(  # noqa: PLR0917 (FastAPI reads parameters by name)
    user_id: Annotated[UUID, Path()], reader: UserOrOperator, analytics: AnalyticsDependencies,
    since: Since = None, until: Until = None, min_position: MinPosition = None,
) -> Response:  # fmt: skip
    _readable(reader, user_id)
    _, body = await _summary(analytics, user_id, since, until, min_position)
    body["average_transaction_value"] = orjson.Fragment(body["average_transaction_value"])
    return json_response(body)


@router.get(
    "/analytics/{user_id}/average_transaction_value",
    summary="A user's average transaction value (the seed's route)",
    response_model=AverageResponse, responses=READ_ERRORS,
)  # fmt: skip
async def average_transaction_value(
    user_id: Annotated[UUID, Path()], reader: UserOrOperator, analytics: AnalyticsDependencies,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    _readable(reader, user_id)
    found, body = await _summary(analytics, user_id, None, None, min_position)
    return json_response({
        "user_id": str(user_id),
        "average_transaction_value": orjson.Fragment(body["average_transaction_value"]),
        "transaction_count": found.transaction_count, "as_of": body["as_of"],
    })  # fmt: skip


def _no_transactions() -> DomainHTTPError:
    return DomainHTTPError(404, "no_transactions", "No transactions found for the specified user.")


@router.get(
    "/analytics/{user_id}/highest_transaction_day",
    summary="The day a user made the most transactions, the earliest on a tie (the seed's route)",
    response_model=HighestDayResponse, responses=SEED_ERRORS,
)  # fmt: skip
async def highest_transaction_day(
    user_id: Annotated[UUID, Path()], reader: UserOrOperator, analytics: AnalyticsDependencies,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    _readable(reader, user_id)
    found, body = await _summary(analytics, user_id, None, None, min_position)
    if found.highest_transaction_day is None:
        raise _no_transactions()
    day, count = found.highest_transaction_day
    return json_response({
        "user_id": str(user_id), "highest_transaction_day": day.isoformat(), "count": count,
        "as_of": body["as_of"],
    })  # fmt: skip


@router.get(
    "/analytics/{user_id}/transaction_totals",
    summary="A user's credit and debit totals over whole UTC days, inclusive (the seed's route)",
    response_model=TotalsResponse, responses=SEED_ERRORS,
)  # fmt: skip
async def transaction_totals(  # noqa: PLR0917 (FastAPI reads parameters by name)
    user_id: Annotated[UUID, Path()], reader: UserOrOperator, analytics: AnalyticsDependencies,
    start_date: Annotated[Day | None, Query(description="First UTC day, inclusive.")] = None,
    end_date: Annotated[Day | None, Query(description="Last UTC day, inclusive.")] = None,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    _readable(reader, user_id)
    found, body = await _summary(analytics, user_id, start_date, end_date, min_position)
    if found.transaction_count == 0:
        raise _no_transactions()
    return json_response({
        "user_id": str(user_id), "start_date": start_date, "end_date": end_date,
        "credit": found.credit, "debit": found.debit, "as_of": body["as_of"],
    })  # fmt: skip


@router.get(
    "/analytics/users/{user_id}/tracking",
    summary="A user's tracking entries counted per year and type",
    response_model=TrackingStatisticsResponse, responses=READ_ERRORS,
)  # fmt: skip
async def user_tracking(
    user_id: Annotated[UUID, Path()], reader: UserOrOperator, analytics: AnalyticsDependencies,
    year: Annotated[int | None, Query(ge=YEAR_MIN, le=YEAR_MAX)] = None,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    _readable(reader, user_id)
    try:
        await _reached(analytics, TRACKING_EVENTS_TOPIC, min_position)
        return json_response(await tracking_statistics(analytics.reads, user_id, year))
    except NotLiveError as problem:
        raise _rebuilding(problem) from problem


@router.get(
    "/analytics/apps/{app}/ledger", summary="An app's credit-ledger totals",
    response_model=AppLedgerResponse,
    responses={**READ_ERRORS, 401: error("No valid API key or operator token."),
               404: error("unknown_app: no such app for this caller.")},
)  # fmt: skip
async def ledger_totals(
    app: Annotated[AppName, Path()], caller: AppOrOperator, analytics: AnalyticsDependencies,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    if app not in analytics.known_apps or caller not in (None, app):
        raise DomainHTTPError(404, "unknown_app", "There is no such app for this caller.")
    try:
        await _reached(analytics, LEDGER_EVENTS_TOPIC, min_position)
        return json_response(await app_ledger(analytics.reads, app))
    except NotLiveError as problem:
        raise _rebuilding(problem) from problem
