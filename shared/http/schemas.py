"""Response shapes every service's routes share, as OpenAPI shows them."""

from typing import Any

from shared.contracts.base import ContractModel

POSITION_PATTERN = r"^[0-9]{1,10}:[0-9]{1,19}(,[0-9]{1,10}:[0-9]{1,19}){0,15}$"
"""`partition:offset[,partition:offset]`, at most 16 parts (see shared.kafka.positions)."""


class ErrorResponse(ContractModel):
    detail: str
    code: str


class CommandPendingResponse(ContractModel):
    """A command whose answer is not (yet) available: ask again later."""

    detail: str
    code: str
    command_id: str


class PendingResponse(ContractModel):
    command_id: str
    status: str


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}
