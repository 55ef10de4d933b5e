"""Use case: decide the RecordEntry commands of one `ledger.commands` partition batch.

Runs inside the partition owner's transaction. Commands are decided one by one in log order
against the accounts and nonce decisions loaded for the batch, then every change is written back
with one statement per table. Each new decision yields exactly one event for the outbox.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from services.ledger.adapters.decision_store import CommandRecord, DecisionStore, StoredDecision
from services.ledger.adapters.outcome_notifier import Answer, notify, payload
from services.ledger.domain.catalog import Catalogs
from services.ledger.domain.model import (
    Account,
    NewDecision,
    NonceReused,
    PriorDecision,
    Replay,
    Status,
    decide,
)
from services.ledger.domain.outcomes import (
    HTTP_CONFLICT,
    HTTP_CREATED,
    HTTP_OK,
    Outcome,
    nonce_reused_outcome,
    unknown_operation_outcome,
)
from services.ledger.handlers.intake import ParsedCommand, take_in
from shared.contracts.envelope import CLOUDEVENTS_CONTENT_TYPE, encode_event
from shared.contracts.ledger import (
    ENTRY_RECORDED_V1,
    ENTRY_REJECTED_V1,
    LEDGER_SOURCE,
    EntryRecorded,
    aggregate_key,
)
from shared.kafka.dead_letters import dead_letter
from shared.kafka.partition_handler import HandlerResult, PartitionBatch
from shared.kafka.positions import format_position
from shared.kafka.producer import OutgoingMessage, PublishedMessage

EVENT_HEADERS = (("content-type", CLOUDEVENTS_CONTENT_TYPE.encode()),)


@dataclass(frozen=True, slots=True)
class Published:
    """After publication: which nonce each message decided, and who waits for an answer."""

    nonces: list[tuple[str, str]]
    answers: list[Answer]


@dataclass(slots=True)
class _Plan:
    accounts: dict[tuple[str, str], Account]
    decisions: dict[tuple[str, str], StoredDecision]
    commands: dict[str, CommandRecord]
    before: dict[tuple[str, str], Account]
    new_decisions: list[tuple[PriorDecision, str]] = field(default_factory=list)
    new_commands: list[CommandRecord] = field(default_factory=list)
    messages: list[OutgoingMessage] = field(default_factory=list)
    message_nonces: list[tuple[str, str]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    dead_letters: list[OutgoingMessage] = field(default_factory=list)


class RecordEntryHandler:
    def __init__(
        self,
        *,
        catalogs: Catalogs,
        store: DecisionStore,
        events_topic: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._catalogs = catalogs
        self._store = store
        self._events_topic = events_topic
        self._clock = clock

    async def handle(self, connection: asyncpg.Connection, batch: PartitionBatch) -> HandlerResult:
        intake = take_in(batch, self._catalogs)
        now = self._clock()
        decidable = intake.decidable
        snapshot = await self._store.load(
            connection,
            owners=sorted({(c.command.app, c.command.owner_id) for c in decidable}),
            nonces=sorted({(c.command.app, c.command.nonce) for c in decidable}),
            command_ids=[c.envelope.id for c in (*decidable, *intake.unknown_operations)],
        )
        plan = _Plan(
            dict(snapshot.accounts), dict(snapshot.decisions), dict(snapshot.commands),
            before=snapshot.accounts,
        )  # fmt: skip
        plan.dead_letters.extend(intake.dead_letters)
        for item in intake.unknown_operations:
            if item.envelope.id not in plan.commands:
                outcome = unknown_operation_outcome(item.command.app, item.command.operation)
                self._answer_error(plan, item, outcome, now)
        for item in decidable:
            self._decide_one(plan, item, now)
        changed = [
            account for key, account in plan.accounts.items() if plan.before.get(key) != account
        ]
        await self._store.save(
            connection,
            decisions=plan.new_decisions,
            accounts=changed,
            loaded=plan.before,
            commands=plan.new_commands,
            now=now,
        )
        await notify(
            connection,
            [payload(answer, answer.position) for answer in plan.answers if answer.ready],
        )
        waiting = [answer for answer in plan.answers if not answer.ready]
        return HandlerResult(
            plan.messages, plan.dead_letters, Published(plan.message_nonces, waiting)
        )

    async def after_publish(
        self, connection: asyncpg.Connection, published: Sequence[PublishedMessage], context: Any
    ) -> None:
        if context is None:  # A predecessor's leftovers: read each event to find its nonce.
            nonces = [_nonce_of(item.message.value) for item in published]
            answers: list[Answer] = []
        else:
            assert isinstance(context, Published)
            nonces, answers = context.nonces, context.answers
        positions: dict[tuple[str, str], tuple[int, int]] = {}
        for nonce, item in zip(nonces, published, strict=True):
            positions.setdefault(nonce, (item.partition, item.offset))
        await self._store.record_positions(
            connection, [(app, nonce, *where) for (app, nonce), where in positions.items()]
        )
        payloads = []
        for answer in answers:
            assert answer.decision is not None
            where = positions.get((answer.decision.app, answer.decision.nonce))
            if where is not None:
                payloads.append(payload(answer, format_position(*where)))
        await notify(connection, payloads)

    def _decide_one(self, plan: _Plan, item: ParsedCommand, now: datetime) -> None:
        command, command_id = item.command, item.envelope.id
        known = plan.commands.get(command_id)
        if known is not None:
            if (known.app, known.nonce) != (command.app, command.nonce):
                plan.dead_letters.append(
                    dead_letter(
                        item.record,
                        "duplicate_command_id",
                        f"The command id {command_id!r} was already used for another command.",
                    )
                )
            return  # A redelivered command: its answer was given already.
        owner = (command.app, command.owner_id)
        account = plan.accounts.get(owner) or Account(command.app, command.owner_id, 0, 0)
        stored = plan.decisions.get((command.app, command.nonce))
        catalog = self._catalogs.for_app(command.app)
        assert catalog is not None, "intake refuses apps without a catalog"
        decision, after = decide(
            command, account=account, prior=stored.decision if stored else None,
            catalog=catalog, command_id=command_id, now=now,
        )  # fmt: skip
        if isinstance(decision, NewDecision):
            plan.accounts[owner] = after
            self._record_new(plan, item, decision)
        elif isinstance(decision, Replay):
            assert stored is not None
            status = HTTP_OK if decision.prior.status is Status.RECORDED else HTTP_CONFLICT
            answer = Answer(command_id, decision.prior, first=False, position=stored.position)
            self._answer(plan, item, answer, status, now)
        elif isinstance(decision, NonceReused):
            self._answer_error(plan, item, nonce_reused_outcome(command.app, command.nonce), now)

    def _record_new(self, plan: _Plan, item: ParsedCommand, decision: NewDecision) -> None:
        prior = decision.prior
        plan.decisions[(prior.app, prior.nonce)] = StoredDecision(prior, None)
        key = aggregate_key(prior.app, prior.owner_id)
        recorded = type(decision.event) is EntryRecorded
        event_id, value = encode_event(
            message_type=ENTRY_RECORDED_V1 if recorded else ENTRY_REJECTED_V1,
            source=LEDGER_SOURCE,
            subject=key,
            data=decision.event,
            correlation_id=item.envelope.correlationid or item.envelope.id,
            causation_id=item.envelope.id,
        )
        plan.new_decisions.append((prior, event_id))
        plan.messages.append(
            OutgoingMessage(self._events_topic, key.encode(), value, EVENT_HEADERS)
        )
        plan.message_nonces.append((prior.app, prior.nonce))
        status = HTTP_CREATED if recorded else HTTP_CONFLICT
        self._answer(
            plan, item, Answer(item.envelope.id, prior, first=True), status, prior.decided_at
        )

    def _answer(
        self, plan: _Plan, item: ParsedCommand, answer: Answer, status: int, now: datetime
    ) -> None:
        assert answer.decision is not None
        if item.wants_reply:
            plan.answers.append(answer)
        record = _command_record(item, status, answer.decision.code, answer.decision.detail, now)
        plan.new_commands.append(record)
        plan.commands[item.envelope.id] = record

    def _answer_error(
        self, plan: _Plan, item: ParsedCommand, outcome: Outcome, now: datetime
    ) -> None:
        if item.wants_reply:
            plan.answers.append(Answer(item.envelope.id, error=outcome))
        record = _command_record(
            item, outcome.status, outcome.code, str(outcome.body["detail"]), now
        )
        plan.new_commands.append(record)
        plan.commands[item.envelope.id] = record


def _command_record(
    item: ParsedCommand, status: int, code: str | None, detail: str | None, now: datetime
) -> CommandRecord:
    return CommandRecord(
        command_id=item.envelope.id, app=item.command.app, nonce=item.command.nonce,
        owner_id=item.command.owner_id, operation=item.command.operation, status=status,
        code=code, detail=detail, decided_at=now,
    )  # fmt: skip


def _nonce_of(value: bytes) -> tuple[str, str]:
    data = orjson.loads(value)["data"]
    return data["app"], data["nonce"]
