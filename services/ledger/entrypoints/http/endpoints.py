"""The ledger's HTTP routes, mounted by the gateway.

Writes become `ledger.record_entry.v1` commands on `ledger.commands`; the route waits for the
processor's stored reply and returns it unchanged (the gateway decides nothing, not even an
unknown operation). Reads come from the read model, at once or, with `min_position`, once the
read model has applied that position.

Route order matters where paths overlap: `/ledger/{owner_id}/entries` comes before
`/ledger/commands/{command_id}`, so an owner named `commands` is readable like any other.
"""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from services.ledger.entrypoints.http.dependencies import Ledger, LedgerHttp
from services.ledger.entrypoints.http.schemas import (
    BalanceResponse,
    EntriesResponse,
    EntryResponse,
    OperationsResponse,
    RecordEntryRequest,
)
from shared.contracts.base import AppName, Identifier, PathIdentifier, SourceText
from shared.contracts.envelope import build_envelope
from shared.contracts.ledger import RECORD_ENTRY_V1, RecordEntry, aggregate_key
from shared.http.auth import API_KEY_SECURITY, AppOrOperator, CallingApp, app_for_request
from shared.http.commands import GATEWAY_SOURCE, stored_reply_response
from shared.http.errors import DomainHTTPError, encode_json, json_response
from shared.http.schemas import (
    CommandPendingResponse,
    MinPosition,
    PendingResponse,
    error,
)
from shared.kafka.producer import partition_for
from shared.read_cache import CachedAnswer

ENTRIES_PAGE_DEFAULT = 50
ENTRIES_PAGE_MAX = 500

router = APIRouter(tags=["credit ledger"])
OwnerId = Annotated[PathIdentifier, Path(description="The owner's id within the calling app.")]
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error("missing_api_key or invalid_api_key."),
    422: error("An invalid owner id, position or parameter (FastAPI's shape plus `code`)."),
    503: error("dependency_unavailable: PostgreSQL is not answering; retry shortly."),
    504: error("not_caught_up: the read model did not reach min_position within 5 s."),
}


@router.get(
    "/apps/{app}/operations",
    summary="The operation catalog of an app",
    response_model=OperationsResponse,
    responses={
        401: error("No valid API key or operator token."),
        404: error("unknown_app: no such app for this caller."),
    },
)
async def operations(
    app: Annotated[AppName, Path()], caller: AppOrOperator, ledger: Ledger
) -> Response:
    catalog = ledger.catalogs.for_app(app)
    if catalog is None or caller not in (None, app):
        raise DomainHTTPError(404, "unknown_app", "There is no such app for this caller.")
    return json_response({"app": app, "operations": dict(catalog.operations)})


@router.post(
    "/ledger/",
    status_code=201,
    summary="Record a catalog operation for an owner",
    response_model=EntryResponse,
    responses={
        200: {"model": EntryResponse, "description": "This nonce was recorded before."},
        401: error("missing_api_key or invalid_api_key."),
        409: error("insufficient_balance or nonce_reused."),
        413: error("body_too_large."),
        422: error("unknown_operation, unknown_app, or an invalid body."),
        503: {"model": CommandPendingResponse, "description": "broker_unavailable or "
              "dependency_unavailable: ask GET /ledger/commands/{command_id} later."},
        504: {"model": CommandPendingResponse, "description": "outcome_timeout: the command is"
              " in the log and will be decided; ask GET /ledger/commands/{command_id}."},
    },
)  # fmt: skip
async def record_entry(body: RecordEntryRequest, app: CallingApp, ledger: Ledger) -> Response:
    command = RecordEntry(
        app=app, owner_id=body.owner_id, operation=body.operation, nonce=body.nonce
    )
    key = aggregate_key(app, body.owner_id)
    envelope = build_envelope(
        message_type=RECORD_ENTRY_V1, source=GATEWAY_SOURCE, subject=key, data=command
    )
    return await ledger.sender.send(key, envelope)


router.add_api_route(
    "/ledger", record_entry, methods=["POST"], status_code=201, include_in_schema=False
)


@router.get(
    "/ledger/{owner_id}/entries",
    summary="An owner's entries, newest first",
    response_model=EntriesResponse,
    responses=READ_ERRORS,
)
async def entries(  # noqa: PLR0917 (FastAPI reads parameters by name)
    owner_id: OwnerId,
    app: CallingApp,
    ledger: Ledger,
    limit: Annotated[int, Query(ge=1, le=ENTRIES_PAGE_MAX)] = ENTRIES_PAGE_DEFAULT,
    before: Annotated[UUID | None, Query(description="An entry id: return older entries.")] = None,
    min_position: MinPosition = None,
) -> Response:
    await _wait_for_position(ledger, min_position)
    before_sequence = None
    if before is not None:
        before_sequence = await ledger.reads.entry_sequence(app, owner_id, before)
        if before_sequence is None:
            raise DomainHTTPError(422, "unknown_cursor", "`before` is not an entry of this owner.")
    rows = await ledger.reads.entries(app, owner_id, limit, before_sequence)
    items = [{name: value for name, value in row.items() if name != "sequence"} for row in rows]
    next_before = str(rows[-1]["id"]) if len(rows) == limit else None
    return json_response(
        {"owner_id": owner_id, "app": app, "entries": items, "next_before": next_before}
    )


COMMAND_REPLY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": EntryResponse, "description": "The answer (its own status and body)."},
    201: {"model": EntryResponse, "description": "The answer: recorded."},
    202: {"model": PendingResponse, "description": "Not decided yet (or not visible)."},
    401: error("missing_api_key or invalid_api_key."),
    409: error("The answer (insufficient_balance, nonce_reused) or ambiguous_command_id."),
    422: error("The answer (unknown_operation, invalid_data, ...) or an invalid id."),
    503: error("dependency_unavailable."),
}


@router.get(
    "/ledger/commands/{command_id:path}",
    summary="The answer a command got, once decided",
    description=(
        "The stored answer of a command by its CloudEvents id, 202 while it is pending. The id"
        " `entries` is also an owner's entry list (that route wins); read such a command at"
        " `/commands/ledger/entries`."
    ),
    responses=COMMAND_REPLY_RESPONSES,
)
async def command_reply(
    command_id: Annotated[Identifier, Path()],
    app: CallingApp,
    ledger: Ledger,
    source: Annotated[SourceText | None, Query(description="The command's source.")] = None,
) -> Response:
    return await stored_reply_response(ledger.replies, command_id, scope=app, source=source)


router.add_api_route(
    "/commands/ledger/{command_id:path}",
    command_reply,
    methods=["GET"],
    summary="The answer a command got (an alias no owner route can shadow)",
    responses=COMMAND_REPLY_RESPONSES,
)


@router.get(
    "/ledger/{owner_id}",
    summary="An owner's balance in the calling app",
    response_model=BalanceResponse,
    responses=READ_ERRORS,
    openapi_extra=API_KEY_SECURITY,
)
async def balance(
    owner_id: OwnerId, request: Request, min_position: MinPosition = None
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


async def _wait_for_position(ledger: LedgerHttp, min_position: str | None) -> None:
    await ledger.positions.wait_for(min_position)
