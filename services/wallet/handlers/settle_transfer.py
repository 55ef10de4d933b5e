"""SettleTransfer, on the sender's partition: the transfer ends, and its caller is answered.

Completed, or refunded to the sender (the recipient could not be credited, the leg was
cancelled at the deadline, or it could not even be read). The deadline is cancelled and the
request that started the transfer gets its final answer, positioned at `TransferSettled`.
"""

from collections.abc import Sequence

from services.wallet.adapters.decision_state import WalletState
from services.wallet.domain.model import decide_settlement
from services.wallet.handlers import answers
from services.wallet.handlers.legs import leg_fields, transfer_deadline_name
from services.wallet.settings import EVENTS_TOPIC
from shared.contracts.wallet import TRANSFER_SETTLED_V1, SettleTransfer, TransferSettled
from shared.engine.messages import Incoming, ReplyKey
from shared.engine.work import Work


async def settle_transfer(
    work: Work[WalletState], commands: Sequence[Incoming[SettleTransfer]]
) -> None:
    state = work.state
    await state.load_transfers(c.data.transfer_id for c in commands)
    await state.load_wallets(c.data.from_user_id for c in commands)
    for incoming in commands:
        command = incoming.data
        settled = decide_settlement(
            state.transfers.get(command.transfer_id), state.wallets.get(command.from_user_id),
            command.outcome, work.now,
        )  # fmt: skip
        if settled is None:
            continue  # Unknown or already final: a second settlement changes nothing.
        state.set_wallet(settled.wallet)
        state.set_transfer(settled.transfer)
        work.cancel(transfer_deadline_name(command.transfer_id))
        emitted = work.emit(
            incoming, topic=EVENTS_TOPIC, key=str(command.from_user_id),
            message_type=TRANSFER_SETTLED_V1,
            data=TransferSettled(
                **leg_fields(settled.transfer), outcome=command.outcome,
                refunded=settled.refunded, balance=settled.wallet.balance,
                sequence=settled.wallet.sequence, settled_at=work.now,
            ),
        )  # fmt: skip
        origin = settled.transfer.origin
        status, body = answers.transfer_final(settled.transfer)
        work.reply(
            ReplyKey(origin.source, origin.message_id), status, body,
            scope=str(command.from_user_id), event=emitted,
        )  # fmt: skip
