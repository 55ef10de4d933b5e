"""What every step of a transfer shares: its fields and the name of its deadline."""

from typing import Any
from uuid import UUID

from services.wallet.domain.model import Transfer
from shared.contracts.wallet import Leg


def leg_fields(transfer: Transfer | Leg) -> dict[str, Any]:
    return {
        "transfer_id": transfer.transfer_id,
        "from_user_id": transfer.from_user_id,
        "to_user_id": transfer.to_user_id,
        "amount": transfer.amount,
    }


def transfer_deadline_name(transfer_id: UUID) -> str:
    return f"transfer:{transfer_id}"
