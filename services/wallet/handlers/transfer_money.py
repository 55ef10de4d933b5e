"""TransferMoney, on the sender's partition: the first step of a transfer (ADR 0021).

The sender pays (`TransferDebited`), the credit leg goes to the recipient's partition and a
deadline is set; or the sender cannot pay (`TransferRejected`, 409 `insufficient_funds`), an
answer that stands for every retry. The transfer's final answer comes from `settle_transfer`.
"""

from collections.abc import Sequence
from datetime import timedelta

from services.wallet.adapters.decision_state import WalletState
from services.wallet.domain.model import (
    Again,
    Debit,
    KeyReused,
    NoWallet,
    Origin,
    Reject,
    ToSelf,
    TransferRequest,
    decide_transfer,
)
from services.wallet.handlers import answers
from services.wallet.handlers.legs import leg_fields, transfer_deadline_name
from services.wallet.settings import COMMANDS_TOPIC, EVENTS_TOPIC
from shared.contracts.wallet import (
    CREDIT_TRANSFER_V1,
    EXPIRE_TRANSFER_V1,
    TRANSFER_DEBITED_V1,
    TRANSFER_REJECTED_V1,
    CreditTransfer,
    ExpireTransfer,
    TransferDebited,
    TransferMoney,
    TransferRejected,
)
from shared.engine.messages import Incoming, ReplyKey
from shared.engine.work import Work


class TransferMoneyHandler:
    def __init__(self, deadline_seconds: float) -> None:
        self._deadline = timedelta(seconds=deadline_seconds)

    async def __call__(
        self, work: Work[WalletState], commands: Sequence[Incoming[TransferMoney]]
    ) -> None:
        state = work.state
        await state.load_wallets(c.data.from_user_id for c in commands)
        await state.load_transfers(c.data.transfer_id for c in commands)
        for incoming in commands:
            self._decide(work, incoming)

    def _decide(self, work: Work[WalletState], incoming: Incoming[TransferMoney]) -> None:
        command, state = incoming.data, work.state
        request = TransferRequest(
            command.transfer_id, command.from_user_id, command.to_user_id, command.amount,
            command.request_hash,
        )  # fmt: skip
        origin = Origin(incoming.identity.source, incoming.identity.message_id)
        decision = decide_transfer(
            request, sender=state.wallet(command.from_user_id),
            known=state.transfers.get(command.transfer_id), origin=origin, now=work.now,
        )  # fmt: skip
        scope = str(command.from_user_id)
        if isinstance(decision, Debit):
            self._debit(work, incoming, decision)
        elif isinstance(decision, Reject):
            _reject(work, incoming, decision)
        elif isinstance(decision, Again):
            known = decision.transfer
            if known.status.final:
                status, body = answers.transfer_final(known)
                earlier = ReplyKey(known.origin.source, known.origin.message_id)
                work.reply(incoming.identity, status, body, scope=scope, position_of=earlier)
            else:
                work.reply(incoming.identity, *answers.IN_PROGRESS, scope=scope)
        elif isinstance(decision, KeyReused):
            work.reply(incoming.identity, *answers.KEY_REUSED, scope=scope)
        elif isinstance(decision, ToSelf):
            work.reply(incoming.identity, *answers.TO_SELF, scope=scope)
        else:
            assert isinstance(decision, NoWallet), decision
            work.reply(incoming.identity, *answers.NO_WALLET, scope=scope)

    def _debit(
        self, work: Work[WalletState], incoming: Incoming[TransferMoney], decision: Debit
    ) -> None:
        command, state = incoming.data, work.state
        state.set_wallet(decision.wallet)
        state.set_transfer(decision.transfer)
        fields = leg_fields(decision.transfer)
        work.emit(
            incoming, topic=EVENTS_TOPIC, key=str(command.from_user_id),
            message_type=TRANSFER_DEBITED_V1,
            data=TransferDebited(
                **fields, note_sealed=command.note_sealed, balance=decision.wallet.balance,
                sequence=decision.wallet.sequence, debited_at=work.now,
            ),
        )  # fmt: skip
        work.emit(
            incoming, topic=COMMANDS_TOPIC, key=str(command.to_user_id),
            message_type=CREDIT_TRANSFER_V1, data=CreditTransfer(**fields),
        )  # fmt: skip
        work.schedule(
            incoming, name=transfer_deadline_name(command.transfer_id),
            due_at=work.now + self._deadline, topic=COMMANDS_TOPIC,
            key=str(command.from_user_id), message_type=EXPIRE_TRANSFER_V1,
            data=ExpireTransfer(**fields),
        )  # fmt: skip


def _reject(work: Work[WalletState], incoming: Incoming[TransferMoney], decision: Reject) -> None:
    command, state = incoming.data, work.state
    state.set_wallet(decision.wallet)
    state.set_transfer(decision.transfer)
    emitted = work.emit(
        incoming, topic=EVENTS_TOPIC, key=str(command.from_user_id),
        message_type=TRANSFER_REJECTED_V1,
        data=TransferRejected(
            **leg_fields(decision.transfer), code="insufficient_funds",
            balance=decision.wallet.balance, sequence=decision.wallet.sequence,
            rejected_at=work.now,
        ),
    )  # fmt: skip
    status, body = answers.transfer_final(decision.transfer)
    work.reply(incoming.identity, status, body, scope=str(command.from_user_id), event=emitted)
