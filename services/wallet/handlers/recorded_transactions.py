"""Recorded (outside) transactions: record, amend, void. No money moves; each change is a
new event carrying the whole record, so nothing is ever rewritten in the log."""

from collections.abc import Sequence
from typing import Any

from services.wallet.adapters.decision_state import WalletState
from services.wallet.domain.recorded import (
    Changes,
    Recorded,
    Refused,
    decide_amend,
    decide_record,
    decide_void,
)
from services.wallet.handlers import answers
from services.wallet.settings import EVENTS_TOPIC
from shared.contracts.wallet import (
    TRANSACTION_AMENDED_V1,
    TRANSACTION_RECORDED_V1,
    TRANSACTION_VOIDED_V1,
    AmendTransaction,
    RecordTransaction,
    TransactionAmended,
    TransactionRecorded,
    TransactionVoided,
    VoidTransaction,
)
from shared.engine.messages import Incoming
from shared.engine.work import Work

RecordCommand = RecordTransaction | AmendTransaction | VoidTransaction


def record_body(record: Recorded, work: Work[WalletState]) -> dict[str, Any]:
    return {
        "id": str(record.transaction_id),
        "user_id": str(record.user_id),
        "transaction_amount": record.amount,
        "transaction_type": record.transaction_type,
        "transaction_date": record.transaction_date,
        "status": "voided" if record.voided else "active",
        "version": record.version,
        "updated_at": work.now,
    }


async def recorded_transactions(
    work: Work[WalletState], commands: Sequence[Incoming[RecordCommand]]
) -> None:
    state = work.state
    await state.load_recorded(c.data.transaction_id for c in commands)
    for incoming in commands:
        command = incoming.data
        known = state.recorded.get(command.transaction_id)
        if isinstance(command, RecordTransaction):
            _record(work, incoming, known, command)
            continue
        if isinstance(command, AmendTransaction):
            changes = Changes(
                command.amount, command.transaction_type, command.transaction_date,
                command.full_name_sealed,
            )  # fmt: skip
            decided = decide_amend(known, command.user_id, changes)
        else:
            decided = decide_void(known, command.user_id)
        _write(work, incoming, decided, answers.HTTP_OK)


def _record(
    work: Work[WalletState],
    incoming: Incoming[RecordCommand],
    known: Recorded | None,
    command: RecordTransaction,
) -> None:
    new = Recorded(
        command.transaction_id, command.user_id, command.amount, command.transaction_type,
        command.transaction_date, command.full_name_sealed, 1, False,
    )  # fmt: skip
    decided = decide_record(known, new)
    if decided is None:
        assert known is not None, "a repeat has a known record"
        work.reply(
            incoming.identity, answers.HTTP_OK, record_body(known, work),
            scope=str(command.user_id),
        )  # fmt: skip
        return
    _write(work, incoming, decided, answers.HTTP_CREATED)


def _write(
    work: Work[WalletState], incoming: Incoming[RecordCommand], decided: Recorded | Refused,
    status: int,
) -> None:  # fmt: skip
    scope = str(incoming.data.user_id)
    if isinstance(decided, Refused):
        work.reply(incoming.identity, *answers.refusal(decided.status, decided.code,
                   decided.detail), scope=scope)  # fmt: skip
        return
    work.state.set_recorded(decided)
    emitted = work.emit(
        incoming, topic=EVENTS_TOPIC, key=str(decided.user_id),
        message_type=_event_type(incoming.data), data=_event(decided, incoming.data, work),
    )  # fmt: skip
    work.reply(incoming.identity, status, record_body(decided, work), scope=scope, event=emitted)


def _event_type(command: RecordCommand) -> str:
    if isinstance(command, RecordTransaction):
        return TRANSACTION_RECORDED_V1
    return (
        TRANSACTION_AMENDED_V1 if isinstance(command, AmendTransaction) else TRANSACTION_VOIDED_V1
    )


def _event(
    record: Recorded, command: RecordCommand, work: Work[WalletState]
) -> TransactionRecorded | TransactionAmended | TransactionVoided:
    if isinstance(command, VoidTransaction):
        return TransactionVoided(
            transaction_id=record.transaction_id, user_id=record.user_id,
            version=record.version, voided_at=work.now,
        )  # fmt: skip
    fields = {
        "transaction_id": record.transaction_id, "user_id": record.user_id,
        "amount": record.amount, "transaction_type": record.transaction_type,
        "transaction_date": record.transaction_date,
        "full_name_sealed": record.full_name_sealed, "version": record.version,
    }  # fmt: skip
    if isinstance(command, RecordTransaction):
        return TransactionRecorded(**fields, recorded_at=work.now)
    return TransactionAmended(**fields, amended_at=work.now)
