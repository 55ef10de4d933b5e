"""What each wallet outcome answers, as an HTTP status and a JSON body.

The processor stores these answers (the engine's inbox) and the gateway returns them
unchanged, so every retry of a request gets a byte-identical body.
"""

from typing import Any

from services.wallet.domain.model import Transfer, Wallet
from services.wallet.domain.money import CURRENCY

HTTP_OK = 200
HTTP_CREATED = 201
HTTP_NOT_FOUND = 404
HTTP_CONFLICT = 409
HTTP_UNPROCESSABLE = 422

Answer = tuple[int, dict[str, Any]]


def transfer_body(transfer: Transfer) -> dict[str, Any]:
    """The transfer as answered; the engine adds `position` once its event is published."""
    return {
        "id": str(transfer.transfer_id),
        "status": transfer.status.value,
        "from_user_id": str(transfer.from_user_id),
        "to_user_id": str(transfer.to_user_id),
        "amount": transfer.amount,
        "created_at": transfer.created_at,
    }


def transfer_final(transfer: Transfer) -> Answer:
    """A transfer's final answer: 201 completed, 409 with the reason otherwise."""
    body = transfer_body(transfer)
    if transfer.status.value == "completed":
        return HTTP_CREATED, body
    if transfer.status.value == "rejected":
        return HTTP_CONFLICT, {
            "detail": "The sender's balance is lower than the amount.",
            "code": "insufficient_funds",
        } | body
    return HTTP_CONFLICT, {
        "detail": "The recipient could not be credited; the amount was returned.",
        "code": "transfer_refunded",
    } | body


def refusal(status: int, code: str, detail: str) -> Answer:
    return status, {"detail": detail, "code": code}


def wallet_body(wallet: Wallet) -> dict[str, Any]:
    return {"user_id": str(wallet.user_id), "balance": wallet.balance, "currency": CURRENCY}


KEY_REUSED = refusal(
    HTTP_CONFLICT, "idempotency_key_reused",
    "This Idempotency-Key was used for a different transfer request.",
)  # fmt: skip
TO_SELF = refusal(HTTP_UNPROCESSABLE, "self_transfer", "A wallet cannot transfer to itself.")
NO_WALLET = refusal(HTTP_NOT_FOUND, "wallet_not_found", "This user has no open wallet yet.")
IN_PROGRESS = refusal(
    HTTP_CONFLICT, "transfer_in_progress",
    "This transfer is still in flight; its answer is given to the request that started it.",
)  # fmt: skip
