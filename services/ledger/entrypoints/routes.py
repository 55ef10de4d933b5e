"""The ledger's HTTP routes, mounted by the gateway.

Writes become `ledger.record_entry.v1` commands on `ledger.commands`; the route then waits for
the partition owner's answer and returns it unchanged. Reads come from the read model, at once
or, with `min_position`, once the read model has applied that position.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from starlette.responses import Response

from services.ledger.adapters.outcome_notifier import OUTCOME_CHANNEL
from services.ledger.adapters.read_models import LedgerReads
from services.ledger.domain.catalog import Catalogs
from services.ledger.projections.view_store import POSITIONS_CHANNEL
from services.ledger.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    PROCESSOR_NAME,
    PROJECTOR_NAME,
    SCHEMA,
    LedgerSettings,
    load_catalogs,
)
from shared.contracts.base import ContractModel, Identifier
from shared.contracts.envelope import build_envelope
from shared.contracts.ledger import RECORD_ENTRY_V1, RecordEntry, aggregate_key
from shared.http.auth import API_KEY_SECURITY, AppOrOperator, CallingApp, app_for_request
from shared.http.errors import DomainHTTPError, encode_json, json_response
from shared.kafka.checkpoints import CheckpointStore
from shared.kafka.command_publisher import CommandPublisher
from shared.kafka.lag import LagReader
from shared.kafka.positions import PositionError, parse_position
from shared.kafka.producer import partition_for
from shared.observability.metrics import COMMAND_OUTCOME_SECONDS
from shared.postgres.notify import NotificationHub
from shared.read_cache import CachedAnswer, ReadCache
from shared.settings import PlatformSettings
from shared.waiters import READ_WAIT_TIMEOUT_SECONDS, CheckpointWatcher, OutcomeWaiter

ENTRIES_PAGE_DEFAULT = 50
ENTRIES_PAGE_MAX = 500
GATEWAY_SOURCE = "ledgerbus/gateway"


@dataclass(frozen=True, slots=True)
class LedgerHttp:
    """What the ledger routes need, built by the gateway at start."""

    catalogs: Catalogs
    reads: LedgerReads
    publisher: CommandPublisher
    outcomes: OutcomeWaiter
    checkpoints: CheckpointWatcher
    commands_topic: str
    command_timeout_seconds: float
    events_partitions: int
    balances: ReadCache = field(default_factory=ReadCache)


async def _ledger(request: Request) -> LedgerHttp:
    # async on purpose: FastAPI runs a plain `def` dependency in a thread, a hop per request.
    ledger = request.app.state.ledger
    assert isinstance(ledger, LedgerHttp)
    return ledger


Ledger = Annotated[LedgerHttp, Depends(_ledger)]
router = APIRouter(tags=["credit ledger"])


class RecordEntryRequest(ContractModel):
    owner_id: Identifier
    operation: str = Field(min_length=1, max_length=64, examples=["CREDIT_ADD"])
    nonce: Identifier


class EntryResponse(ContractModel):
    id: UUID
    app: str
    owner_id: str
    operation: str
    amount: int
    nonce: str
    created_on: datetime
    balance: int
    position: str


class BalanceResponse(ContractModel):
    owner_id: str
    app: str
    balance: int
    last_updated: datetime | None
    position: str | None


class ErrorResponse(ContractModel):
    detail: str
    code: str


@router.get("/apps/{app}/operations", summary="The operation catalog of an app")
async def operations(app: str, caller: AppOrOperator, ledger: Ledger) -> dict[str, Any]:
    catalog = ledger.catalogs.for_app(app)
    if catalog is None or caller not in (None, app):
        raise DomainHTTPError(404, "unknown_app", f"There is no app {app!r} for this caller.")
    return {"app": app, "operations": dict(catalog.operations)}


@router.post(
    "/ledger/",
    status_code=201,
    summary="Record a catalog operation for an owner",
    responses={
        201: {"model": EntryResponse, "description": "Recorded."},
        200: {"model": EntryResponse, "description": "This nonce was recorded before."},
        409: {"model": ErrorResponse, "description": "insufficient_balance or nonce_reused."},
        422: {"description": "unknown_operation, or an invalid body."},
        504: {"description": "outcome_timeout: no processor answered in time."},
    },
)
async def record_entry(body: RecordEntryRequest, app: CallingApp, ledger: Ledger) -> Response:
    catalog = ledger.catalogs.for_app(app)
    if catalog is None or catalog.amount_of(body.operation) is None:
        raise DomainHTTPError(
            422, "unknown_operation", f"{body.operation} is not an operation of the {app} catalog."
        )
    command = RecordEntry(
        app=app, owner_id=body.owner_id, operation=body.operation, nonce=body.nonce
    )
    key = aggregate_key(app, body.owner_id)
    envelope = build_envelope(
        message_type=RECORD_ENTRY_V1, source=GATEWAY_SOURCE, subject=key, data=command
    )
    with (
        ledger.outcomes.expect(envelope.id) as answer,
        COMMAND_OUTCOME_SECONDS.labels("ledger").time(),
    ):
        try:
            await ledger.publisher.publish(ledger.commands_topic, key, envelope)
        except Exception as error:
            raise DomainHTTPError(
                503, "broker_unavailable", f"The command could not be appended to the log: {error}."
            ) from error
        outcome = await answer(ledger.command_timeout_seconds)
    if outcome is None:
        raise DomainHTTPError(
            504,
            "outcome_timeout",
            f"No processor answered within {ledger.command_timeout_seconds:g} s. The command is in"
            f" the log and will be decided; ask GET /ledger/commands/{envelope.id} for its answer.",
            extra={"command_id": envelope.id},
        )
    return json_response(outcome["body"], outcome["status"])


router.add_api_route(
    "/ledger", record_entry, methods=["POST"], status_code=201, include_in_schema=False
)


@router.get("/ledger/commands/{command_id}", summary="The answer a command got, once decided")
async def command_outcome(command_id: str, app: CallingApp, ledger: Ledger) -> Response:
    outcome = await ledger.reads.stored_outcome(command_id)
    if outcome is not None and outcome["app"] != app:
        outcome = None
    if outcome is None:
        return json_response({"command_id": command_id, "status": "pending"}, 202)
    return json_response(outcome["body"], outcome["status"])


@router.get(
    "/ledger/{owner_id}",
    summary="An owner's balance in the calling app",
    responses={200: {"model": BalanceResponse}, 401: {"model": ErrorResponse}},
    openapi_extra=API_KEY_SECURITY,
)
async def balance(
    owner_id: str,
    request: Request,
    min_position: Annotated[
        str | None, Query(description="Wait until this position is applied.")
    ] = None,
) -> Response:
    # The busiest route resolves its caller and context directly: each FastAPI dependency
    # costs tens of microseconds per request (see `make bench`).
    app = app_for_request(request)
    ledger: LedgerHttp = request.app.state.ledger
    await _wait_for_position(ledger, min_position)
    watcher, key = ledger.checkpoints, (app, owner_id)
    listening = watcher.listening  # before the query: news arriving during it voids the entry
    cached = ledger.balances.get(key, watcher.known, listening)
    if cached is not None:
        return Response(cached, media_type="application/json")
    partition = partition_for(aggregate_key(app, owner_id).encode(), ledger.events_partitions)
    row = await ledger.reads.balance(app, owner_id, partition)
    body = encode_json(
        {
            "owner_id": owner_id,
            "app": app,
            "balance": row["balance"] or 0,
            "last_updated": row["last_updated"],
            "position": row["position"],
        }
    )
    checkpoint = row["checkpoint"] or 0
    watcher.merge({partition: checkpoint})
    if listening is not None and listening == watcher.listening:
        ledger.balances.put(key, CachedAnswer(partition, checkpoint, listening, body))
    return Response(body, media_type="application/json")


@router.get("/ledger/{owner_id}/entries", summary="An owner's entries, newest first")
async def entries(  # noqa: PLR0917 (FastAPI reads parameters by name)
    owner_id: str,
    app: CallingApp,
    ledger: Ledger,
    limit: Annotated[int, Query(ge=1, le=ENTRIES_PAGE_MAX)] = ENTRIES_PAGE_DEFAULT,
    before: Annotated[UUID | None, Query(description="An entry id: return older entries.")] = None,
    min_position: str | None = None,
) -> Response:
    await _wait_for_position(ledger, min_position)
    before_sequence = None
    if before is not None:
        before_sequence = await ledger.reads.entry_sequence(app, owner_id, before)
        if before_sequence is None:
            raise DomainHTTPError(
                422, "unknown_cursor", f"{before} is not an entry of {owner_id!r} in {app}."
            )
    rows = await ledger.reads.entries(app, owner_id, limit, before_sequence)
    items = [{name: value for name, value in row.items() if name != "sequence"} for row in rows]
    next_before = str(rows[-1]["id"]) if len(rows) == limit else None
    return json_response(
        {"owner_id": owner_id, "app": app, "entries": items, "next_before": next_before}
    )


async def _wait_for_position(ledger: LedgerHttp, min_position: str | None) -> None:
    if min_position is None:
        return
    try:
        wanted = parse_position(min_position)
    except PositionError as error:
        raise DomainHTTPError(422, "invalid_position", str(error)) from error
    if not await ledger.checkpoints.wait_for(wanted, READ_WAIT_TIMEOUT_SECONDS):
        raise DomainHTTPError(
            504,
            "not_caught_up",
            f"The ledger read model did not reach {min_position} within"
            f" {READ_WAIT_TIMEOUT_SECONDS:g} s; retry shortly.",
        )


def load_ledger_catalogs() -> Catalogs:
    """Read the catalogs when the gateway is created, so a bad catalog stops it at once."""
    return load_catalogs(LedgerSettings().ledger_catalog_file)


def open_ledger_http(  # noqa: PLR0917 (each argument is a different resource)
    settings: PlatformSettings,
    catalogs: Catalogs,
    pool: asyncpg.Pool,
    hub: NotificationHub,
    publisher: CommandPublisher,
    events_partitions: int,
) -> LedgerHttp:
    """Build the routes' dependencies; subscribes to the ledger's channels on `hub`."""
    reads = LedgerReads(pool, settings.topic(EVENTS_TOPIC))
    return LedgerHttp(
        catalogs=catalogs,
        reads=reads,
        publisher=publisher,
        outcomes=OutcomeWaiter(hub, OUTCOME_CHANNEL, reads.stored_outcome),
        checkpoints=CheckpointWatcher(hub, POSITIONS_CHANNEL, reads.checkpoints),
        commands_topic=settings.topic(COMMANDS_TOPIC),
        command_timeout_seconds=settings.ledgerbus_command_timeout_seconds,
        events_partitions=events_partitions,
    )


async def ledger_lag(
    settings: PlatformSettings, pool: asyncpg.Pool, lag: LagReader
) -> dict[str, object]:
    """Records each ledger consumer has yet to apply (for /ready)."""
    report: dict[str, object] = {}
    for consumer, topic in ((PROCESSOR_NAME, COMMANDS_TOPIC), (PROJECTOR_NAME, EVENTS_TOPIC)):
        async with pool.acquire() as connection:
            stored = await CheckpointStore(SCHEMA, consumer).positions(connection)
        name = settings.topic(topic)
        checkpoints = {partition: offset for (t, partition), offset in stored.items() if t == name}
        report[consumer] = await lag.lag(consumer, name, checkpoints)
    return report
