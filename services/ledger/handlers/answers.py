"""What each ledger outcome answers, as an HTTP status and a JSON body.

Statuses live here, not in `domain/`: the domain decides, this module says how a decision is
told to the caller. The processor stores these answers (the engine's inbox); the gateway
returns them unchanged, so a retry gets a byte-identical body.
"""

from typing import Any

from services.ledger.domain.model import NonceDecision, Status

HTTP_OK = 200
HTTP_CREATED = 201
HTTP_CONFLICT = 409
HTTP_UNPROCESSABLE = 422


def entry_body(decision: NonceDecision) -> dict[str, Any]:
    """The entry as answered; the engine adds `position` once the event is published."""
    assert decision.status is Status.RECORDED, "only a recorded nonce has an entry"
    return {
        "id": str(decision.entry_id),
        "app": decision.app,
        "owner_id": decision.owner_id,
        "operation": decision.operation,
        "amount": decision.amount,
        "nonce": decision.nonce,
        "created_on": decision.decided_at,
    }


def decision_answer(decision: NonceDecision, *, first: bool) -> tuple[int, dict[str, Any]]:
    """A nonce's own outcome: 201 the first time, 200 on a repeat, 409 when it was refused."""
    if decision.status is Status.REJECTED:
        assert decision.code is not None, "a refusal always has a code"
        assert decision.detail is not None, "a refusal always has a sentence"
        return HTTP_CONFLICT, {"detail": decision.detail, "code": decision.code}
    body = entry_body(decision) | {"balance": decision.balance}
    return (HTTP_CREATED if first else HTTP_OK), body


def nonce_reused(app: str) -> tuple[int, dict[str, Any]]:
    return HTTP_CONFLICT, {
        "detail": f"This nonce was already used in {app} for a different request.",
        "code": "nonce_reused",
    }


def unknown_operation(app: str) -> tuple[str, str]:
    return "unknown_operation", f"That operation is not in the {app} catalog."


def unknown_app(app: str) -> tuple[str, str]:
    return "unknown_app", f"No catalog exists for the app {app}."
