"""The operator's wallet routes: top-ups from the system account, and the system's totals."""

import hashlib
from typing import Any
from uuid import NAMESPACE_URL, uuid4, uuid5

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from services.wallet.entrypoints.http.dependencies import WalletDependencies
from services.wallet.entrypoints.http.schemas import (
    IdempotencyKey,
    SystemResponse,
    TopUpRequest,
)
from shared.contracts.base import utc_now
from shared.contracts.envelope import CloudEvent
from shared.contracts.wallet import TOP_UP_WALLET_V1, TopUpWallet
from shared.http.auth import Operator
from shared.http.commands import GATEWAY_SOURCE
from shared.http.errors import DomainHTTPError, json_response
from shared.http.schemas import CommandPendingResponse, error

TOPUP_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledgerbus.dev/wallet/topups")

router = APIRouter(tags=["operator"])
OPERATOR_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error("invalid_operator_token."),
    503: error("dependency_unavailable."),
}


@router.post(
    "/wallet/topups", status_code=201, summary="Move system money into a user's wallet",
    responses=OPERATOR_ERRORS | {
        404: error("recipient_not_found or wallet_not_found."),
        409: error("topup_exists, balance_limit."),
        504: {"model": CommandPendingResponse, "description": "outcome_timeout."},
    },
)  # fmt: skip
async def top_up(
    body: TopUpRequest, _: Operator, wallet: WalletDependencies,
    idempotency_key: IdempotencyKey = None,
) -> Response:  # fmt: skip
    if await wallet.identity.by_id(body.user_id) is None:
        raise DomainHTTPError(404, "recipient_not_found", "There is no such user.")
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    topup_id = (
        uuid5(TOPUP_NAMESPACE, idempotency_key)
        if idempotency_key is not None else uuid4()
    )  # fmt: skip
    command_id = uuid5(TOPUP_NAMESPACE, f"{topup_id}:{hashlib.sha256(canonical).hexdigest()}")
    command = TopUpWallet(topup_id=topup_id, user_id=body.user_id, amount=body.amount)
    envelope = CloudEvent(
        specversion="1.0", id=str(command_id), source=GATEWAY_SOURCE, type=TOP_UP_WALLET_V1,
        subject=str(body.user_id), time=utc_now(), data=command.model_dump(mode="json"),
    )  # fmt: skip
    return await wallet.sender.send(str(body.user_id), envelope)


@router.get(
    "/system/", summary="The system account and the users' total, in one snapshot",
    response_model=SystemResponse, responses=OPERATOR_ERRORS,
)  # fmt: skip
async def system(_: Operator, wallet: WalletDependencies) -> Response:
    row = await wallet.reads.system_totals()
    return json_response(
        {"total_user_balance": row["total_user_balance"],
         "system_balance": row["system_balance"], "wallet_count": row["wallet_count"],
         "in_flight": row["in_flight"]}
    )  # fmt: skip
