"""The tracking routes: register an entry (a `tracking.register_entry.v1` command), read
entries, lists filtered per entry, year documents, and the seed's routes as aliases.

A user reaches only their own entries; an app backend writes for its users with its key; the
operator reads everything. Another user's ids answer 404, as if they did not exist.
"""

from datetime import datetime
from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response

from services.tracking.entrypoints.http.dependencies import TrackingDependencies, TrackingHttp
from services.tracking.entrypoints.http.schemas import (
    EntriesResponse,
    EntryRequest,
    EntryResponse,
    IdempotencyKey,
    YearDocument,
)
from services.tracking.settings import WRITING_APPS
from shared.contracts.base import Identifier, SourceText, utc_now
from shared.contracts.envelope import CloudEvent
from shared.contracts.tracking import REGISTER_ENTRY_V1, EntryType, RegisterEntry
from shared.http.auth import (
    UserOrApp,
    UserOrOperator,
    Writer,
    api_key_header,
    bearer,
    require_app,
    require_user_or_operator,
)
from shared.http.commands import GATEWAY_SOURCE, stored_reply_response
from shared.http.errors import DomainHTTPError, json_response
from shared.http.schemas import (
    CommandPendingResponse,
    MinPosition,
    PendingResponse,
    Since,
    Until,
    day_after,
    day_start,
    error,
)

ENTRY_COMMAND_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledgerbus.dev/tracking/entries/commands")
ENTRIES_PAGE_DEFAULT = 50
ENTRIES_PAGE_MAX = 500
YEAR_MIN, YEAR_MAX = 1, 9999

router = APIRouter(tags=["tracking"])
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error("missing_token, invalid_token or invalid_operator_token."),
    404: error("Not found, or not this user's."),
    422: error("invalid_position, invalid_range or unknown_cursor (or FastAPI's shape)."),
    504: error("not_caught_up: the read model did not reach min_position in time."),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error("missing_token, invalid_token or invalid_api_key."),
    403: error("app_not_allowed: this app's key may not register entries."),
    404: error("Another user's id."),
    409: error("idempotency_key_reused: the key was used for another entry."),
    422: error("meta_data that does not fit its type, or user_id missing for an app."),
    503: {"model": CommandPendingResponse, "description": "broker_unavailable."},
    504: {"model": CommandPendingResponse, "description": "outcome_timeout."},
}


def not_found(what: str) -> DomainHTTPError:
    return DomainHTTPError(404, f"{what}_not_found", f"There is no such {what} for this caller.")


def _owner(writer: Writer, named: UUID | None) -> UUID:
    """Whose entry this is: the user's own (naming another is a 404), or the app's choice."""
    if writer.user is not None:
        if named is not None and named != writer.user:
            raise not_found("user")
        return writer.user
    if writer.app not in WRITING_APPS:
        raise DomainHTTPError(
            403, "app_not_allowed", "This app's key may not register tracking entries."
        )
    if named is None:
        raise DomainHTTPError(
            422, "user_id_required", "An app registers entries for a user: send user_id."
        )
    return named


@router.post(
    "/tracking/entries", status_code=201, summary="Register a tracking entry",
    response_model=EntryResponse, responses=WRITE_ERRORS,
)  # fmt: skip
async def register_entry(
    body: EntryRequest, writer: UserOrApp, tracking: TrackingDependencies,
    idempotency_key: IdempotencyKey = None,
) -> Response:  # fmt: skip
    user = _owner(writer, body.user_id)
    command = RegisterEntry(user_id=user, type=body.type, date=body.date, meta_data=body.meta_data)
    # A key is the caller's: an app's one key names one entry, whichever user it was for.
    caller = f"app:{writer.app}" if writer.app is not None else f"user:{user}"
    command_id = (
        uuid5(ENTRY_COMMAND_NAMESPACE, f"{caller}:{idempotency_key}")
        if idempotency_key is not None else uuid4()
    )  # fmt: skip
    envelope = CloudEvent(
        specversion="1.0", id=str(command_id), source=GATEWAY_SOURCE, type=REGISTER_ENTRY_V1,
        subject=str(user), time=utc_now(), data=command.model_dump(mode="json"),
    )  # fmt: skip
    response = await tracking.sender.send(str(user), envelope)
    if idempotency_key is not None and not _answers(body, user, response):
        raise DomainHTTPError(
            409, "idempotency_key_reused", "This Idempotency-Key registered another entry."
        )
    return response


def _answers(body: EntryRequest, user: UUID, response: Response) -> bool:
    """Whether a stored answer is this request's entry (the same key may have come first with
    another body: the first entry stands, and this request is told so)."""
    if response.status_code != 201:
        return True
    stored = orjson.loads(bytes(response.body))
    asked = body.model_dump(mode="json")
    dated = datetime.fromisoformat(stored["date"])
    if body.date is None:  # the first request left the date to the server, or it did not
        same_date = dated == datetime.fromisoformat(stored["created_on"])
    else:
        same_date = dated == body.date
    return (
        stored["user_id"] == str(user) and stored["type"] == body.type
        and stored["meta_data"] == asked["meta_data"] and same_date
    )  # fmt: skip


def _entry(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "user_id": str(row["user_id"]), "type": row["type"],
        "date": row["date"], "year": row["year"], "meta_data": orjson.Fragment(row["meta_data"]),
        "created_on": row["created_on"], "position": row["position"],
    }  # fmt: skip


@router.get(
    "/tracking/entries/{entry_id}", summary="One entry", response_model=EntryResponse,
    responses=READ_ERRORS,
)  # fmt: skip
async def get_entry(
    entry_id: Annotated[UUID, Path()], reader: UserOrOperator, tracking: TrackingDependencies,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    await tracking.positions.wait_for(min_position)
    row = await tracking.reads.entry(entry_id)
    if row is None or (reader is not None and row["user_id"] != reader):
        raise not_found("entry")
    return json_response(_entry(row))


def _readable(reader: UUID | None, user_id: UUID) -> None:
    if reader is not None and reader != user_id:
        raise not_found("user")


@router.get(
    "/tracking/users/{user_id}/entries", summary="A user's entries, newest first, filtered",
    response_model=EntriesResponse, responses=READ_ERRORS,
)  # fmt: skip
async def list_entries(  # noqa: PLR0917 (FastAPI reads parameters by name)
    user_id: Annotated[UUID, Path()], reader: UserOrOperator, tracking: TrackingDependencies,
    entry_type: Annotated[
        EntryType | None, Query(alias="type", description="Only entries of this type.")
    ] = None,
    since: Since = None, until: Until = None,
    limit: Annotated[int, Query(ge=1, le=ENTRIES_PAGE_MAX)] = ENTRIES_PAGE_DEFAULT,
    before: Annotated[UUID | None, Query(description="The last entry id of a page.")] = None,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    _readable(reader, user_id)
    if since is not None and until is not None and since > until:
        raise DomainHTTPError(422, "invalid_range", "`from` is after `to`.")
    await tracking.positions.wait_for(min_position)
    cursor = await _cursor(tracking, user_id, before)
    rows = await tracking.reads.entries(
        user_id, entry_type=entry_type, since=day_start(since), until=day_after(until),
        before=cursor, limit=limit,
    )  # fmt: skip
    entries = [_entry(row) for row in rows]
    next_before = entries[-1]["id"] if len(rows) == limit else None
    return json_response({"user_id": str(user_id), "entries": entries, "next_before": next_before})


async def _cursor(
    tracking: TrackingHttp, user_id: UUID, before: UUID | None
) -> tuple[datetime, UUID] | None:
    if before is None:
        return None
    row = await tracking.reads.entry(before)
    if row is None or row["user_id"] != user_id:
        raise DomainHTTPError(422, "unknown_cursor", "`before` is not one of this user's entries.")
    return row["date"], row["id"]


@router.get(
    "/tracking/users/{user_id}/years/{year}", summary="The year document of a user",
    response_model=YearDocument, responses=READ_ERRORS,
)  # fmt: skip
async def year_document(
    user_id: Annotated[UUID, Path()],
    year: Annotated[int, Path(ge=YEAR_MIN, le=YEAR_MAX)],
    reader: UserOrOperator, tracking: TrackingDependencies, min_position: MinPosition = None,
) -> Response:  # fmt: skip
    _readable(reader, user_id)
    await tracking.positions.wait_for(min_position)
    rows = await tracking.reads.year(user_id, year)
    if not rows:
        raise not_found("year")
    entries = [_entry(row) for row in rows]
    return json_response(
        {"user_id": str(user_id), "year": year,
         "created_at": min(row["created_on"] for row in rows), "entries": entries,
         "entries_ids": [entry["id"] for entry in entries]}
    )  # fmt: skip


router.add_api_route(
    "/api/track/register", register_entry, methods=["POST"], status_code=201,
    summary="Register a tracking entry (the seed's route)", response_model=EntryResponse,
    responses=WRITE_ERRORS,
)  # fmt: skip
router.add_api_route(
    # Only a UUID matches, so `/api/track/register` is POST alone, not also a GET of "register".
    "/api/track/{entry_id:uuid}", get_entry, methods=["GET"],
    summary="One entry (the seed's route)",
    response_model=EntryResponse, responses=READ_ERRORS,
)  # fmt: skip
router.add_api_route(
    "/api/track/all/user/{user_id}", list_entries, methods=["GET"],
    summary="A user's entries (the seed's route; the type filter applies to entries)",
    response_model=EntriesResponse, responses=READ_ERRORS,
)  # fmt: skip


async def _command_reader(
    request: Request,
    api_key: Annotated[str | None, Depends(api_key_header)],
    token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str | None:
    """The scope whose answers the caller reads: a user their own; the operator, or an app
    allowed to write entries for its users, any."""
    if token is None and api_key:
        if await require_app(request, api_key) not in WRITING_APPS:
            raise DomainHTTPError(403, "app_not_allowed", "This app's key may not read these.")
        return None
    reader = await require_user_or_operator(request, token)
    return None if reader is None else str(reader)


COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "The answer (the entry)."},
    202: {"model": PendingResponse, "description": "Not decided yet (or not the caller's)."},
    401: error("missing_token, invalid_token or invalid_api_key."),
    403: error("app_not_allowed."),
    409: error("ambiguous_command_id: add ?source=."),
}


@router.get(
    "/tracking/commands/{command_id}", summary="The answer a tracking command got, once decided",
    responses=COMMAND_RESPONSES,
)  # fmt: skip
async def command_reply(
    command_id: Annotated[Identifier, Path()],
    scope: Annotated[str | None, Depends(_command_reader)],
    tracking: TrackingDependencies,
    source: Annotated[SourceText | None, Query(description="The command's source.")] = None,
) -> Response:
    return await stored_reply_response(tracking.replies, command_id, scope=scope, source=source)


router.add_api_route(
    "/commands/tracking/{command_id}", command_reply, methods=["GET"],
    summary="The answer a tracking command got (the same route, under /commands)",
    responses=COMMAND_RESPONSES,
)  # fmt: skip
