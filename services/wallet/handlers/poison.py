"""A credit leg the recipient's partition cannot even read still names its transfer: the
settlement refunds it, so money never parks on an unreadable record (ADR 0021, step 6)."""

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from services.wallet.adapters.decision_state import WalletState
from services.wallet.handlers.legs import leg_fields
from services.wallet.settings import COMMANDS_TOPIC
from shared.contracts.registry import RejectedRecord
from shared.contracts.wallet import SETTLE_TRANSFER_V1, Leg, SettleTransfer
from shared.engine.messages import Record, ReplyKey
from shared.engine.work import Work

CREDIT_LEG_TYPE_PREFIX = "wallet.credit_transfer."
"""Any version of the credit leg: one this processor does not know is still a transfer's."""


def on_poison(
    work: Work[WalletState],
    record: Record,
    rejection: RejectedRecord,
    raw: Mapping[str, Any] | None,
    identity: ReplyKey | None,
) -> None:
    if raw is None or identity is None:
        return
    message_type = raw.get("type")
    if not isinstance(message_type, str) or not message_type.startswith(CREDIT_LEG_TYPE_PREFIX):
        return
    try:
        leg = Leg.model_validate(raw.get("data"))
    except ValidationError:
        return  # Not even the transfer can be read: nothing to compensate from this record.
    work.emit(
        identity, topic=COMMANDS_TOPIC, key=str(leg.from_user_id),
        message_type=SETTLE_TRANSFER_V1,
        data=SettleTransfer(**leg_fields(leg), outcome="unreadable"),
    )  # fmt: skip
