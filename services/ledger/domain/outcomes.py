"""The HTTP answer each decision maps to, built one way for every path that answers it.

The processor notifies waiting gateways with these answers; the gateway rebuilds the same
answer from stored rows when it polls or when a client asks for a command later. Both call
these functions, so a retry gets a byte-identical body.
"""

from dataclasses import dataclass
from typing import Any

from services.ledger.domain.model import PriorDecision, Status

HTTP_CREATED = 201
HTTP_OK = 200
HTTP_CONFLICT = 409
HTTP_UNPROCESSABLE = 422


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: dict[str, Any]

    @property
    def code(self) -> str | None:
        code = self.body.get("code")
        return code if isinstance(code, str) else None


def entry_body(decision: PriorDecision, position: str) -> dict[str, Any]:
    return {
        "id": str(decision.entry_id),
        "app": decision.app,
        "owner_id": decision.owner_id,
        "operation": decision.operation,
        "amount": decision.amount,
        "nonce": decision.nonce,
        "created_on": decision.decided_at.isoformat().replace("+00:00", "Z"),
        "balance": decision.balance,
        "position": position,
    }


def decision_outcome(decision: PriorDecision, position: str, *, first: bool) -> Outcome:
    """The answer for a nonce's own outcome: 201 first, 200 on a retry, 409 when refused."""
    if decision.status is Status.REJECTED:
        assert decision.code is not None, "a refusal always has a code"
        assert decision.detail is not None, "a refusal always has a sentence"
        return Outcome(HTTP_CONFLICT, {"detail": decision.detail, "code": decision.code})
    return Outcome(HTTP_CREATED if first else HTTP_OK, entry_body(decision, position))


def nonce_reused_outcome(app: str, nonce: str) -> Outcome:
    return Outcome(
        HTTP_CONFLICT,
        {
            "detail": f"The nonce {nonce!r} was already used in {app} for a different request.",
            "code": "nonce_reused",
        },
    )


def unknown_operation_outcome(app: str, operation: str) -> Outcome:
    return Outcome(
        HTTP_UNPROCESSABLE,
        {
            "detail": f"{operation} is not an operation of the {app} catalog.",
            "code": "unknown_operation",
        },
    )
