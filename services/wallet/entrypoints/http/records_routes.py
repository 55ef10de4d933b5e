"""Recorded (outside) transactions, for analytics: no money moves (the Fido seed's records).

Created, amended and voided as events; nothing is rewritten. `full_name` is sealed with the
user's key before it enters the log, and opened only to answer its owner.
"""

import hashlib
from datetime import datetime
from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import orjson
from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from services.wallet.entrypoints.http.dependencies import WalletDependencies, WalletHttp
from services.wallet.entrypoints.http.schemas import (
    AmendTransactionRequest,
    IdempotencyKey,
    RecordedTransactionGoneResponse,
    RecordedTransactionResponse,
    RecordedTransactionsResponse,
    RecordTransactionRequest,
)
from services.wallet.entrypoints.http.wallet_routes import (
    USER_ERRORS,
    _opened,
    not_found,
)
from shared.contracts.base import ContractModel, utc_now
from shared.contracts.envelope import CloudEvent
from shared.contracts.wallet import (
    AMEND_TRANSACTION_V1,
    RECORD_TRANSACTION_V1,
    VOID_TRANSACTION_V1,
    AmendTransaction,
    RecordTransaction,
    VoidTransaction,
)
from shared.http.auth import CurrentUser
from shared.http.commands import GATEWAY_SOURCE
from shared.http.errors import DomainHTTPError, json_response
from shared.http.schemas import CommandPendingResponse, MinPosition, error

RECORD_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledgerbus.dev/wallet/recorded")
RECORDS_PAGE_DEFAULT = 50
RECORDS_PAGE_MAX = 500

router = APIRouter(tags=["recorded transactions"])
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = USER_ERRORS | {
    409: error("transaction_voided, transaction_exists."),
    503: {"model": CommandPendingResponse, "description": "broker_unavailable or"
          " dependency_unavailable: ask GET /wallet/commands/{command_id} later."},
    504: {"model": CommandPendingResponse, "description": "outcome_timeout."},
}  # fmt: skip
TransactionId = Annotated[UUID, Path()]


@router.post(
    "/transactions", status_code=201, summary="Record an outside transaction (no money moves)",
    response_model=RecordedTransactionResponse,
    responses=WRITE_RESPONSES | {
        200: {"model": RecordedTransactionResponse,
              "description": "Recorded before with this Idempotency-Key and these values."},
    },
)  # fmt: skip
async def record_transaction(
    body: RecordTransactionRequest, user: CurrentUser, wallet: WalletDependencies,
    idempotency_key: IdempotencyKey = None,
) -> Response:  # fmt: skip
    if idempotency_key is None:
        transaction_id, command_id = uuid4(), uuid4()
    else:
        # A retry with the same key and body is the same command: the processor skips it and
        # the first answer is returned. The name is sealed afresh each time (a new nonce), so
        # the id comes from the body as sent, never from the command.
        transaction_id = uuid5(RECORD_NAMESPACE, f"{user}:{idempotency_key}")
        canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        command_id = uuid5(
            RECORD_NAMESPACE, f"{transaction_id}:{hashlib.sha256(canonical).hexdigest()}"
        )
    command = RecordTransaction(
        transaction_id=transaction_id, user_id=user, amount=body.transaction_amount,
        transaction_type=body.transaction_type, transaction_date=body.transaction_date,
        full_name_sealed=await _sealed(wallet, user, body.full_name),
    )  # fmt: skip
    response = await _send(wallet, user, RECORD_TRANSACTION_V1, command, command_id)
    return _with_name(response, body.full_name)


@router.patch(
    "/transactions/{transaction_id}", summary="Amend a recorded transaction (a new version)",
    response_model=RecordedTransactionResponse, responses=WRITE_RESPONSES,
)  # fmt: skip
async def amend_transaction(
    transaction_id: TransactionId, body: AmendTransactionRequest, user: CurrentUser,
    wallet: WalletDependencies,
) -> Response:  # fmt: skip
    command = AmendTransaction(
        transaction_id=transaction_id, user_id=user, amount=body.transaction_amount,
        transaction_type=body.transaction_type, transaction_date=body.transaction_date,
        full_name_sealed=await _sealed(wallet, user, body.full_name),
    )  # fmt: skip
    return await _send(wallet, user, AMEND_TRANSACTION_V1, command)


@router.delete(
    "/transactions/{transaction_id}", summary="Void a recorded transaction (its last version)",
    response_model=RecordedTransactionResponse, responses=WRITE_RESPONSES,
)  # fmt: skip
async def void_transaction(
    transaction_id: TransactionId, user: CurrentUser, wallet: WalletDependencies
) -> Response:
    command = VoidTransaction(transaction_id=transaction_id, user_id=user)
    return await _send(wallet, user, VOID_TRANSACTION_V1, command)


async def _sealed(wallet: WalletHttp, user: UUID, full_name: str | None) -> str | None:
    if full_name is None:
        return None
    return await wallet.seal_for(user, full_name)


async def _send(
    wallet: WalletHttp, user: UUID, message_type: str, command: ContractModel,
    command_id: UUID | None = None,
) -> Response:  # fmt: skip
    envelope = CloudEvent(
        specversion="1.0", id=str(command_id or uuid4()), source=GATEWAY_SOURCE, type=message_type,
        subject=str(user), time=utc_now(), data=command.model_dump(mode="json"),
    )  # fmt: skip
    return await wallet.sender.send(str(user), envelope)


def _with_name(response: Response, full_name: str | None) -> Response:
    """The answer as stored, plus the name the caller just sent (the log holds it sealed)."""
    if full_name is None or response.status_code >= 300:
        return response
    body = orjson.loads(bytes(response.body)) | {"full_name": full_name}
    return json_response(body, response.status_code)


@router.get(
    "/transactions/{transaction_id}", summary="One of the caller's recorded transactions",
    response_model=RecordedTransactionResponse,
    responses=USER_ERRORS | {
        410: {"model": RecordedTransactionGoneResponse,
              "description": "transaction_voided: voided (DELETE); the record as it stood."},
    },
)  # fmt: skip
async def get_transaction(
    transaction_id: TransactionId, user: CurrentUser, wallet: WalletDependencies,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    await wallet.positions.wait_for(min_position)
    row = await wallet.reads.recorded(transaction_id)
    if row is None or row["user_id"] != user:
        raise not_found("transaction")
    keys = await wallet.identity.keys([user])
    body = _recorded_body(row, keys.get(user))
    if row["status"] == "voided":
        gone = {"detail": "This transaction was voided.", "code": "transaction_voided"}
        return json_response(gone | body, 410)
    return json_response(body)


@router.get(
    "/transactions", summary="The caller's recorded transactions, newest date first",
    response_model=RecordedTransactionsResponse, responses=USER_ERRORS,
)  # fmt: skip
async def list_transactions(  # noqa: PLR0917 (FastAPI reads parameters by name)
    user: CurrentUser, wallet: WalletDependencies,
    limit: Annotated[int, Query(ge=1, le=RECORDS_PAGE_MAX)] = RECORDS_PAGE_DEFAULT,
    before: Annotated[UUID | None, Query(description="A transaction id: older ones.")] = None,
    include_voided: Annotated[bool, Query(description="List voided ones too.")] = False,
    min_position: MinPosition = None,
) -> Response:  # fmt: skip
    await wallet.positions.wait_for(min_position)
    cursor: tuple[datetime, UUID] | None = None
    if before is not None:
        row = await wallet.reads.recorded(before)
        if row is None or row["user_id"] != user:
            raise DomainHTTPError(422, "unknown_cursor", "`before` is not one of yours.")
        cursor = (row["transaction_date"], before)
    rows = await wallet.reads.recorded_list(user, limit, cursor, include_voided=include_voided)
    key = (await wallet.identity.keys([user])).get(user)
    items = [_recorded_body(row, key) for row in rows]
    next_before = items[-1]["id"] if len(rows) == limit else None
    return json_response({"user_id": str(user), "transactions": items, "next_before": next_before})


def _recorded_body(row: Any, key: bytes | None) -> dict[str, Any]:
    sealed = row["full_name_sealed"]
    return {
        "id": str(row["transaction_id"]), "user_id": str(row["user_id"]),
        "transaction_amount": row["amount"], "transaction_type": row["transaction_type"],
        "transaction_date": row["transaction_date"],
        "full_name": None if sealed is None else _opened(key, row["user_id"], sealed),
        "status": row["status"], "version": row["version"], "created_at": row["created_at"],
        "updated_at": row["updated_at"], "position": row["position"],
    }  # fmt: skip
