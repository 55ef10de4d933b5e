"""TopUpWallet: an operator moves money from the system account into a wallet."""

from collections.abc import Sequence

from services.wallet.adapters.decision_state import WalletState
from services.wallet.domain.model import decide_top_up
from services.wallet.handlers import answers
from services.wallet.settings import EVENTS_TOPIC
from shared.contracts.wallet import WALLET_TOPPED_UP_V1, TopUpWallet, WalletToppedUp
from shared.engine.messages import Incoming
from shared.engine.work import Work

TOPUP_EXISTS = answers.refusal(
    answers.HTTP_CONFLICT, "topup_exists", "A top-up with this id was already made."
)
BALANCE_LIMIT = answers.refusal(
    answers.HTTP_CONFLICT, "balance_limit", "The wallet cannot hold this much."
)


async def top_up(work: Work[WalletState], commands: Sequence[Incoming[TopUpWallet]]) -> None:
    state = work.state
    await state.load_wallets(c.data.user_id for c in commands)
    await state.load_topups(c.data.topup_id for c in commands)
    for incoming in commands:
        command = incoming.data
        if state.topups.get(command.topup_id) is not None:
            work.reply(incoming.identity, *TOPUP_EXISTS, scope=None)
            continue
        before = state.wallet(command.user_id)
        after = decide_top_up(before, command.amount)
        if after is None:
            refusal = answers.NO_WALLET if before is None else BALANCE_LIMIT
            work.reply(incoming.identity, *refusal, scope=None)
            continue
        state.set_wallet(after)
        state.set_topup(command.topup_id, command.user_id, command.amount)
        emitted = work.emit(
            incoming, topic=EVENTS_TOPIC, key=str(command.user_id),
            message_type=WALLET_TOPPED_UP_V1,
            data=WalletToppedUp(
                user_id=command.user_id, topup_id=command.topup_id, amount=command.amount,
                balance=after.balance, sequence=after.sequence, topped_up_at=work.now,
            ),
        )  # fmt: skip
        body = {"id": str(command.topup_id), "amount": command.amount} | answers.wallet_body(after)
        work.reply(
            incoming.identity, answers.HTTP_CREATED, body | {"created_at": work.now},
            scope=None, event=emitted,
        )  # fmt: skip
