"""ExpireTransfer, on the sender's partition when a transfer's deadline passes.

A transfer still pending asks the recipient's partition to cancel the credit. It does not
refund by itself: a late credit could still apply there, and the recipient's partition is the
one place that can say which came first (ADR 0021).
"""

from collections.abc import Sequence
from dataclasses import replace

from services.wallet.adapters.decision_state import WalletState
from services.wallet.domain.model import TransferStatus
from services.wallet.handlers.legs import leg_fields
from services.wallet.settings import COMMANDS_TOPIC
from shared.contracts.wallet import CANCEL_CREDIT_V1, CancelCredit, ExpireTransfer
from shared.engine.messages import Incoming
from shared.engine.work import Work


async def expire_transfer(
    work: Work[WalletState], commands: Sequence[Incoming[ExpireTransfer]]
) -> None:
    state = work.state
    await state.load_transfers(c.data.transfer_id for c in commands)
    for incoming in commands:
        known = state.transfers.get(incoming.data.transfer_id)
        if known is None or known.status is not TransferStatus.PENDING:
            continue  # Settled meanwhile, or already asked: nothing to do.
        state.set_transfer(replace(known, status=TransferStatus.CANCELLING))
        work.emit(
            incoming, topic=COMMANDS_TOPIC, key=str(known.to_user_id),
            message_type=CANCEL_CREDIT_V1, data=CancelCredit(**leg_fields(known)),
        )  # fmt: skip
