"""CreditTransfer and CancelCredit, on the recipient's partition: the first to arrive decides.

A credit applies to an open wallet (`TransferCredited`); a missing wallet refuses it, and a
cancel that comes first (the sender's deadline passed) cancels it (`CreditRefused`). Either way
the settlement goes straight back to the sender's partition. A leg decided before answers the
same way again, so a cancel that arrives after the credit completes the transfer.
"""

from collections.abc import Sequence

from services.wallet.adapters.decision_state import WalletState
from services.wallet.domain.model import (
    Credit,
    CreditStatus,
    Decided,
    Refuse,
    decide_credit,
    settle_outcome,
)
from services.wallet.handlers.legs import leg_fields
from services.wallet.settings import COMMANDS_TOPIC, EVENTS_TOPIC
from shared.contracts.wallet import (
    CREDIT_REFUSED_V1,
    SETTLE_TRANSFER_V1,
    TRANSFER_CREDITED_V1,
    CancelCredit,
    CreditRefused,
    CreditTransfer,
    SettleOutcome,
    SettleTransfer,
    TransferCredited,
)
from shared.engine.messages import Incoming
from shared.engine.work import Work


async def credit_transfer(
    work: Work[WalletState], legs: Sequence[Incoming[CreditTransfer | CancelCredit]]
) -> None:
    state = work.state
    await state.load_wallets(leg.data.to_user_id for leg in legs)
    await state.load_credits(leg.data.transfer_id for leg in legs)
    for incoming in legs:
        leg = incoming.data
        decision = decide_credit(
            leg.amount, recipient=state.wallet(leg.to_user_id),
            known=state.credits.get(leg.transfer_id),
            cancel=leg.reason if isinstance(leg, CancelCredit) else None,
        )  # fmt: skip
        if isinstance(decision, Credit):
            state.set_wallet(decision.wallet)
            state.set_credit(leg.transfer_id, leg.to_user_id, CreditStatus.APPLIED)
            work.emit(
                incoming, topic=EVENTS_TOPIC, key=str(leg.to_user_id),
                message_type=TRANSFER_CREDITED_V1,
                data=TransferCredited(
                    **leg_fields(leg), balance=decision.wallet.balance,
                    sequence=decision.wallet.sequence, credited_at=work.now,
                ),
            )  # fmt: skip
            _settle(work, incoming, "completed")
        elif isinstance(decision, Refuse):
            state.set_credit(leg.transfer_id, leg.to_user_id, decision.status)
            work.emit(
                incoming, topic=EVENTS_TOPIC, key=str(leg.to_user_id),
                message_type=CREDIT_REFUSED_V1,
                data=CreditRefused(
                    **leg_fields(leg), reason=decision.reason, refused_at=work.now
                ),
            )  # fmt: skip
            _settle(work, incoming, decision.reason)
        else:
            assert isinstance(decision, Decided), decision
            _settle(work, incoming, settle_outcome(decision.status))


def _settle(
    work: Work[WalletState],
    incoming: Incoming[CreditTransfer | CancelCredit],
    outcome: SettleOutcome,
) -> None:
    leg = incoming.data
    work.emit(
        incoming, topic=COMMANDS_TOPIC, key=str(leg.from_user_id),
        message_type=SETTLE_TRANSFER_V1, data=SettleTransfer(**leg_fields(leg), outcome=outcome),
    )  # fmt: skip
