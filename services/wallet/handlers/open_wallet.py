"""OpenWallet: a registered user's wallet opens with the opening balance, which the system
account pays (an event on the user's own stream: the system account never refuses)."""

from collections.abc import Sequence

from services.wallet.adapters.decision_state import WalletState
from services.wallet.domain.model import Wallet
from services.wallet.handlers import answers
from services.wallet.settings import EVENTS_TOPIC, OPENING_BALANCE_PAISA
from shared.contracts.wallet import WALLET_OPENED_V1, OpenWallet, WalletOpened
from shared.engine.messages import Incoming
from shared.engine.work import Work

WALLET_EXISTS = answers.refusal(
    answers.HTTP_CONFLICT, "wallet_exists", "This user's wallet is already open."
)


async def open_wallet(work: Work[WalletState], commands: Sequence[Incoming[OpenWallet]]) -> None:
    state = work.state
    await state.load_wallets(c.data.user_id for c in commands)
    for incoming in commands:
        command = incoming.data
        scope = str(command.user_id)
        if state.wallet(command.user_id) is not None:
            work.reply(incoming.identity, *WALLET_EXISTS, scope=scope)
            continue
        wallet = Wallet(command.user_id, OPENING_BALANCE_PAISA, 1, work.now)
        state.set_wallet(wallet)
        emitted = work.emit(
            incoming, topic=EVENTS_TOPIC, key=scope, message_type=WALLET_OPENED_V1,
            data=WalletOpened(
                user_id=command.user_id, amount=OPENING_BALANCE_PAISA, balance=wallet.balance,
                sequence=wallet.sequence, name_sealed=command.name_sealed,
                email_sealed=command.email_sealed, opened_at=work.now,
            ),
        )  # fmt: skip
        work.reply(
            incoming.identity, answers.HTTP_CREATED, answers.wallet_body(wallet), scope=scope,
            event=emitted,
        )  # fmt: skip
