"""A credit leg the recipient's partition cannot even read still names its transfer: the
partition cancels the leg through its own log (a `CancelCredit` keyed by the recipient), which
decides it in order and settles the refund, so money never parks on an unreadable record, and
a readable copy arriving later (a redriven dead letter) finds the leg cancelled and credits
nothing (ADR 0021, step 6). A refund sent straight to the sender would credit that copy too."""

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from services.wallet.adapters.decision_state import WalletState
from services.wallet.handlers.legs import leg_fields
from services.wallet.settings import COMMANDS_TOPIC
from shared.contracts.registry import RejectedRecord
from shared.contracts.wallet import CANCEL_CREDIT_V1, CancelCredit, Leg
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
        identity, topic=COMMANDS_TOPIC, key=str(leg.to_user_id),
        message_type=CANCEL_CREDIT_V1,
        data=CancelCredit(**leg_fields(leg), reason="unreadable"),
    )  # fmt: skip
