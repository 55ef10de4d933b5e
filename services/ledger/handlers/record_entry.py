"""Use case: decide the RecordEntry commands of one `ledger.commands` partition batch.

Runs inside the partition owner's transaction. Commands are decided one by one in log order
against the accounts and nonce decisions loaded for the batch, then every change is written
back with one statement per table. Each new decision yields exactly one event for the outbox.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from services.ledger.adapters.decision_store import (
    CommandRecord,
    DecisionStore,
    Snapshot,
    StoredDecision,
)
from services.ledger.domain.catalog import Catalogs
from services.ledger.domain.model import (
    Account,
    NewDecision,
    NonceReused,
    PriorDecision,
    Replay,
    decide,
)
from services.ledger.domain.outcomes import (
    Outcome,
    decision_outcome,
    nonce_reused_outcome,
    unknown_operation_outcome,
)
from shared.contracts.envelope import (
    CLOUDEVENTS_CONTENT_TYPE,
    CloudEvent,
    build_envelope,
    encode_envelope,
)
from shared.contracts.ledger import (
    ENTRY_RECORDED_V1,
    ENTRY_REJECTED_V1,
    LEDGER_COMMANDS,
    LEDGER_SOURCE,
    EntryRecorded,
    RecordEntry,
    aggregate_key,
)
from shared.contracts.registry import RejectedRecord
from shared.kafka.dead_letters import dead_letter
from shared.kafka.partition_owner import HandlerResult, PartitionBatch, Record
from shared.kafka.positions import format_position
from shared.kafka.producer import OutgoingMessage, PublishedMessage

OUTCOME_CHANNEL = "ledger_outcomes"
"""PostgreSQL NOTIFY channel on which gateways wait for their commands' answers."""
NOTIFY_PAYLOAD_MAX_BYTES = 7_900
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes or more."""


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    record: Record
    envelope: CloudEvent
    command: RecordEntry


@dataclass(frozen=True, slots=True)
class Answer:
    """What one command will be told, once the position of its decision is known."""

    command_id: str
    decision: PriorDecision | None = None
    first: bool = False
    position: str | None = None
    error: Outcome | None = None


@dataclass(slots=True)
class _Plan:
    accounts: dict[tuple[str, str], Account]
    decisions: dict[tuple[str, str], StoredDecision]
    commands: dict[str, CommandRecord]
    new_decisions: list[tuple[PriorDecision, str]] = field(default_factory=list)
    new_commands: list[CommandRecord] = field(default_factory=list)
    messages: list[OutgoingMessage] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    dead_letters: list[OutgoingMessage] = field(default_factory=list)
    changed_owners: set[tuple[str, str]] = field(default_factory=set)


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
        parsed, dead_letters, unknown = self._parse(batch.records)
        now = self._clock()
        snapshot = await self._store.load(
            connection,
            owners=sorted({(c.command.app, c.command.owner_id) for c in parsed}),
            nonces=sorted({(c.command.app, c.command.nonce) for c in parsed}),
            command_ids=[c.envelope.id for c in parsed] + [c.envelope.id for c in unknown],
        )
        plan = _Plan(dict(snapshot.accounts), dict(snapshot.decisions), dict(snapshot.commands))
        plan.dead_letters.extend(dead_letters)
        self._refuse_unknown_operations(plan, unknown, now)
        for command in parsed:
            self._decide_one(plan, command, now)
        await self._store.save(
            connection,
            plan.new_decisions,
            [plan.accounts[owner] for owner in sorted(plan.changed_owners)],
            plan.new_commands,
            now,
        )
        ready = [answer for answer in plan.answers if answer.error or answer.position]
        await _notify(connection, [_payload(answer, answer.position) for answer in ready])
        waiting = [answer for answer in plan.answers if not (answer.error or answer.position)]
        return HandlerResult(plan.messages, plan.dead_letters, waiting)

    async def after_publish(
        self, connection: asyncpg.Connection, published: Sequence[PublishedMessage], context: Any
    ) -> None:
        positions: dict[tuple[str, str], tuple[int, int]] = {}
        for item in published:
            data = orjson.loads(item.message.value)["data"]
            positions.setdefault((data["app"], data["nonce"]), (item.partition, item.offset))
        await self._store.record_positions(
            connection, [(app, nonce, *where) for (app, nonce), where in positions.items()]
        )
        if context is None:
            return  # A predecessor's leftovers: their waiters poll the stored outcome.
        payloads = []
        for answer in context:
            assert answer.decision is not None
            where = positions.get((answer.decision.app, answer.decision.nonce))
            if where is not None:
                payloads.append(_payload(answer, format_position(*where)))
        await _notify(connection, payloads)

    def _parse(
        self, records: Sequence[Record]
    ) -> tuple[list[ParsedCommand], list[OutgoingMessage], list[ParsedCommand]]:
        """Split records into commands to decide, dead letters, and unknown operations."""
        parsed: list[ParsedCommand] = []
        unknown: list[ParsedCommand] = []
        dead: list[OutgoingMessage] = []
        for record in records:
            result = LEDGER_COMMANDS.parse(record.value)
            if isinstance(result, RejectedRecord):
                dead.append(dead_letter(record, result.code, result.message))
                continue
            assert isinstance(result.data, RecordEntry)
            command = result.data
            expected_key = aggregate_key(command.app, command.owner_id).encode()
            catalog = self._catalogs.for_app(command.app)
            if record.key != expected_key:
                dead.append(dead_letter(record, "key_mismatch", _key_message(expected_key)))
            elif catalog is None:
                dead.append(
                    dead_letter(record, "unknown_app", f"No catalog exists for {command.app!r}.")
                )
            elif catalog.amount_of(command.operation) is None:
                outcome = unknown_operation_outcome(command.app, command.operation)
                dead.append(dead_letter(record, "unknown_operation", outcome.body["detail"]))
                unknown.append(ParsedCommand(record, result.envelope, command))
            else:
                parsed.append(ParsedCommand(record, result.envelope, command))
        return parsed, dead, unknown

    def _refuse_unknown_operations(
        self, plan: _Plan, unknown: Sequence[ParsedCommand], now: datetime
    ) -> None:
        for item in unknown:
            if item.envelope.id in plan.commands:
                continue
            outcome = unknown_operation_outcome(item.command.app, item.command.operation)
            self._answer_error(plan, item, outcome, now)

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
        assert catalog is not None
        decision, after = decide(
            command,
            account=account,
            prior=stored.decision if stored else None,
            catalog=catalog,
            command_id=command_id,
            now=now,
        )
        if isinstance(decision, NewDecision):
            self._record_new(plan, item, decision, after)
        elif isinstance(decision, Replay):
            assert stored is not None
            answer = Answer(command_id, decision.prior, first=False, position=stored.position)
            self._answer(plan, item, answer, decision_outcome_status(decision.prior, False), now)
        elif isinstance(decision, NonceReused):
            self._answer_error(plan, item, nonce_reused_outcome(command.app, command.nonce), now)

    def _record_new(
        self, plan: _Plan, item: ParsedCommand, decision: NewDecision, after: Account
    ) -> None:
        prior = decision.prior
        plan.accounts[(after.app, after.owner_id)] = after
        plan.changed_owners.add((after.app, after.owner_id))
        plan.decisions[(prior.app, prior.nonce)] = StoredDecision(prior, None)
        envelope = build_envelope(
            message_type=ENTRY_RECORDED_V1
            if isinstance(decision.event, EntryRecorded)
            else ENTRY_REJECTED_V1,
            source=LEDGER_SOURCE,
            subject=aggregate_key(prior.app, prior.owner_id),
            data=decision.event,
            correlation_id=item.envelope.correlationid or item.envelope.id,
            causation_id=item.envelope.id,
        )
        plan.new_decisions.append((prior, envelope.id))
        plan.messages.append(
            OutgoingMessage(
                topic=self._events_topic,
                key=aggregate_key(prior.app, prior.owner_id).encode(),
                value=encode_envelope(envelope),
                headers=(("content-type", CLOUDEVENTS_CONTENT_TYPE.encode()),),
            )
        )
        answer = Answer(item.envelope.id, prior, first=True)
        self._answer(plan, item, answer, decision_outcome_status(prior, True), prior.decided_at)

    def _answer(
        self, plan: _Plan, item: ParsedCommand, answer: Answer, status: int, now: datetime
    ) -> None:
        assert answer.decision is not None
        plan.answers.append(answer)
        plan.new_commands.append(
            _command_record(item, status, answer.decision.code, answer.decision.detail, now)
        )
        plan.commands[item.envelope.id] = plan.new_commands[-1]

    def _answer_error(
        self, plan: _Plan, item: ParsedCommand, outcome: Outcome, now: datetime
    ) -> None:
        plan.answers.append(Answer(item.envelope.id, error=outcome))
        record = _command_record(item, outcome.status, outcome.code, outcome.body["detail"], now)
        plan.new_commands.append(record)
        plan.commands[item.envelope.id] = record


def decision_outcome_status(decision: PriorDecision, first: bool) -> int:
    return decision_outcome(decision, "", first=first).status


def _command_record(
    item: ParsedCommand, status: int, code: str | None, detail: str | None, now: datetime
) -> CommandRecord:
    return CommandRecord(
        command_id=item.envelope.id,
        app=item.command.app,
        nonce=item.command.nonce,
        owner_id=item.command.owner_id,
        operation=item.command.operation,
        status=status,
        code=code,
        detail=detail,
        decided_at=now,
    )


def _payload(answer: Answer, position: str | None) -> str:
    if answer.error is not None:
        outcome = answer.error
    else:
        assert answer.decision is not None
        assert position is not None
        outcome = decision_outcome(answer.decision, position, first=answer.first)
    payload = orjson.dumps(
        {"command_id": answer.command_id, "status": outcome.status, "body": outcome.body}
    ).decode()
    assert len(payload.encode()) < NOTIFY_PAYLOAD_MAX_BYTES, "identifiers are bounded"
    return payload


async def _notify(connection: asyncpg.Connection, payloads: Sequence[str]) -> None:
    if payloads:
        await connection.execute(
            "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
            OUTCOME_CHANNEL,
            list(payloads),
        )


def _key_message(expected_key: bytes) -> str:
    return (
        f"The record key must be the aggregate id {expected_key.decode()!r} ({{app}}:{{owner_id}});"
        " another key would let two partitions decide one account."
    )


__all__ = ["OUTCOME_CHANNEL", "RecordEntryHandler", "Snapshot"]
