"""The counter's use cases. A move is a saga across two partitions:

1. `Move`, on the source's partition: debit, emit `MoveDebited`, send the `ApplyCredit` leg to
   the target's partition, and schedule `ExpireMove` at the deadline.
2. `ApplyCredit`, on the target's partition: credit (`CreditApplied`), or refuse
   (`CreditRefused`): the target is frozen, or the move was cancelled there first.
3. Reactions to those events send `SettleMove` back to the source's partition, which ends the
   move: completed, or refunded. Its reply answers the caller who sent `Move`.
4. `ExpireMove` at the deadline sends `CancelCredit` to the target's partition. The target
   decides cancelled-or-applied in its own order, so a refund never races a late credit.
5. A leg the target cannot even read (an unknown version) reaches `on_poison`, which sends
   the `SettleMove` compensation itself.
"""

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from shared.contracts.registry import RejectedRecord
from shared.engine.messages import Incoming, Record, ReplyKey
from shared.engine.work import Work
from tests.counter.contracts import (
    APPLY_CREDIT_V1,
    CANCEL_CREDIT_V1,
    COMMANDS_TOPIC,
    CREDIT_APPLIED_V1,
    CREDIT_REFUSED_V1,
    DEPOSITED_V1,
    EVENTS_TOPIC,
    EXPIRE_MOVE_V1,
    MOVE_DEBITED_V1,
    MOVE_SETTLED_V1,
    SETTLE_MOVE_V1,
    ApplyCredit,
    CancelCredit,
    CreditApplied,
    CreditRefused,
    Deposit,
    Deposited,
    ExpireMove,
    Leg,
    Move,
    MoveDebited,
    MoveSettled,
    Outcome,
    SettleMove,
)
from tests.counter.state import CounterState, MoveRow

UNREADABLE_LEG_TYPE = "counter.apply_credit.v0"
"""A leg of a version the target does not know: a poison record on the target's partition."""


def leg_fields(leg: Leg | Move, origin: ReplyKey) -> dict[str, Any]:
    return {
        "move_id": leg.move_id,
        "source": leg.source,
        "target": leg.target,
        "amount": leg.amount,
        "origin_source": origin.source,
        "origin_id": origin.message_id,
    }


def origin_of(leg: Leg) -> ReplyKey:
    return ReplyKey(leg.origin_source, leg.origin_id)


async def deposit(work: Work[CounterState], commands: Sequence[Incoming[Deposit]]) -> None:
    await work.state.load([c.data.counter for c in commands], [])
    for incoming in commands:
        after = work.state.change(incoming.data.counter, incoming.data.amount)
        event = Deposited(
            counter=after.counter,
            amount=incoming.data.amount,
            balance=after.balance,
            sequence=after.sequence,
        )
        emitted = work.emit(
            incoming, topic=EVENTS_TOPIC, key=after.counter, message_type=DEPOSITED_V1, data=event
        )
        work.reply(
            incoming.identity,
            201,
            {"counter": after.counter, "balance": after.balance},
            scope=None,
            event=emitted,
        )


async def move(work: Work[CounterState], commands: Sequence[Incoming[Move]]) -> None:
    state = work.state
    await state.load([c.data.source for c in commands], [c.data.move_id for c in commands])
    for incoming in commands:
        command = incoming.data
        refusal = None
        if command.source == command.target:
            refusal = (422, "same_counter")
        elif command.move_id in state.moves:
            refusal = (409, "move_exists")
        elif state.counter(command.source).balance < command.amount:
            refusal = (409, "insufficient_funds")
        if refusal is not None:
            work.reply(
                incoming.identity,
                refusal[0],
                {"detail": refusal[1], "code": refusal[1]},
                scope=None,
            )
            continue
        _debit(work, incoming)


def _debit(work: Work[CounterState], incoming: Incoming[Move]) -> None:
    command, state = incoming.data, work.state
    after = state.change(command.source, -command.amount)
    state.set_move(
        MoveRow(command.move_id, command.source, command.target, command.amount, "pending")
    )
    fields = leg_fields(command, incoming.identity)
    work.emit(
        incoming,
        topic=EVENTS_TOPIC,
        key=command.source,
        message_type=MOVE_DEBITED_V1,
        data=MoveDebited(**fields, balance=after.balance, sequence=after.sequence),
    )
    leg_type = UNREADABLE_LEG_TYPE if command.target.startswith("garbled-") else APPLY_CREDIT_V1
    work.emit(
        incoming,
        topic=COMMANDS_TOPIC,
        key=command.target,
        message_type=leg_type,
        data=ApplyCredit(**fields),
    )
    work.schedule(
        incoming,
        name=f"move:{command.move_id}",
        due_at=work.now + timedelta(seconds=command.deadline_seconds),
        topic=COMMANDS_TOPIC,
        key=command.source,
        message_type=EXPIRE_MOVE_V1,
        data=ExpireMove(**fields),
    )


async def apply_credit(
    work: Work[CounterState], legs: Sequence[Incoming[ApplyCredit | CancelCredit]]
) -> None:
    """`ApplyCredit` and `CancelCredit` share one rule: the first to arrive decides."""
    state = work.state
    await state.load([leg.data.target for leg in legs], [leg.data.move_id for leg in legs])
    for incoming in legs:
        leg = incoming.data
        known = state.credits.get(leg.move_id)
        if known is not None:
            _answer_again(work, incoming, known[1])
        elif isinstance(leg, CancelCredit):
            state.set_credit(leg.move_id, leg.target, "cancelled")
            _refuse(work, incoming, "expired")
        elif leg.target.startswith("blackhole-"):
            continue  # This target never answers: only the deadline can end the move.
        elif leg.target.startswith("frozen-"):
            state.set_credit(leg.move_id, leg.target, "refused")
            _refuse(work, incoming, "refused")
        else:
            state.set_credit(leg.move_id, leg.target, "applied")
            after = state.change(leg.target, leg.amount)
            fields = leg_fields(leg, origin_of(leg))
            work.emit(
                incoming,
                topic=EVENTS_TOPIC,
                key=leg.target,
                message_type=CREDIT_APPLIED_V1,
                data=CreditApplied(**fields, balance=after.balance, sequence=after.sequence),
            )


def _refuse(work: Work[CounterState], incoming: Incoming[Leg], reason: Outcome) -> None:
    leg = incoming.data
    after = work.state.change(leg.target, 0)
    work.emit(
        incoming,
        topic=EVENTS_TOPIC,
        key=leg.target,
        message_type=CREDIT_REFUSED_V1,
        data=CreditRefused(
            **leg_fields(leg, origin_of(leg)), reason=reason, sequence=after.sequence
        ),
    )


def _answer_again(work: Work[CounterState], incoming: Incoming[Leg], status: str) -> None:
    """A leg decided before answers the same way again (a cancel after the credit applied)."""
    leg = incoming.data
    outcome: Outcome = "completed" if status == "applied" else "expired"
    if status == "refused":
        outcome = "refused"
    settle = SettleMove(**leg_fields(leg, origin_of(leg)), outcome=outcome)
    work.emit(
        incoming, topic=COMMANDS_TOPIC, key=leg.source, message_type=SETTLE_MOVE_V1, data=settle
    )


async def expire_move(work: Work[CounterState], commands: Sequence[Incoming[ExpireMove]]) -> None:
    await work.state.load([], [c.data.move_id for c in commands])
    for incoming in commands:
        leg = incoming.data
        known = work.state.moves.get(leg.move_id)
        if known is None or known.status != "pending":
            continue
        work.state.set_move(
            MoveRow(known.move_id, known.source, known.target, known.amount, "cancelling")
        )
        work.emit(
            incoming,
            topic=COMMANDS_TOPIC,
            key=leg.target,
            message_type=CANCEL_CREDIT_V1,
            data=CancelCredit(**leg_fields(leg, origin_of(leg))),
        )


async def settle_move(work: Work[CounterState], commands: Sequence[Incoming[SettleMove]]) -> None:
    state = work.state
    await state.load([c.data.source for c in commands], [c.data.move_id for c in commands])
    for incoming in commands:
        settle = incoming.data
        known = state.moves.get(settle.move_id)
        if known is None or known.status == "settled":
            continue
        refund = settle.outcome != "completed"
        after = state.change(settle.source, settle.amount if refund else 0)
        state.set_move(MoveRow(known.move_id, known.source, known.target, known.amount, "settled"))
        work.cancel(f"move:{settle.move_id}")
        fields = leg_fields(settle, origin_of(settle))
        emitted = work.emit(
            incoming,
            topic=EVENTS_TOPIC,
            key=settle.source,
            message_type=MOVE_SETTLED_V1,
            data=MoveSettled(
                **fields,
                outcome=settle.outcome,
                refunded=refund,
                balance=after.balance,
                sequence=after.sequence,
            ),
        )
        body: dict[str, Any] = {"move_id": settle.move_id, "outcome": settle.outcome}
        status = 409 if refund else 201
        if refund:
            body = {
                "detail": f"the move was refunded: {settle.outcome}",
                "code": f"move_{settle.outcome}",
                **body,
            }
        work.reply(origin_of(settle), status, body, scope=None, event=emitted)


async def settle_on_event(
    work: Work[CounterState], events: Sequence[Incoming[CreditApplied | CreditRefused]]
) -> None:
    """Reacting to the target's answer: send the settlement to the source's partition."""
    for incoming in events:
        event = incoming.data
        outcome: Outcome = "completed" if isinstance(event, CreditApplied) else event.reason
        work.emit(
            incoming,
            topic=COMMANDS_TOPIC,
            key=event.source,
            message_type=SETTLE_MOVE_V1,
            data=SettleMove(**leg_fields(event, origin_of(event)), outcome=outcome),
        )


async def ignore(work: Work[CounterState], events: Sequence[Incoming[Any]]) -> None:
    """Events nothing reacts to (they feed the read models only)."""


def on_poison(
    work: Work[CounterState],
    record: Record,
    rejection: RejectedRecord,
    raw: Mapping[str, Any] | None,
    identity: ReplyKey | None,
) -> None:
    """An unreadable credit leg still names its move: settle it as unreadable (a refund)."""
    if raw is None or identity is None or raw.get("type") != UNREADABLE_LEG_TYPE:
        return
    try:
        leg = ApplyCredit.model_validate(raw.get("data"))
    except ValidationError:
        return  # Not even the move can be read: nothing to compensate from this record.
    work.emit(
        identity,
        topic=COMMANDS_TOPIC,
        key=leg.source,
        message_type=SETTLE_MOVE_V1,
        data=SettleMove(**leg_fields(leg, origin_of(leg)), outcome="unreadable"),
    )
