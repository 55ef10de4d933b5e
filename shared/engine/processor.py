"""A processor: the partition-owner handler that decides a service's commands (and reacts to
events), dispatching each message by its type to the service's handler for it.

For each batch of one partition, in the owner's transaction:
1. Parse each record with its topic's registry. A record that is not a valid message is
   dead-lettered with the reason, and its sender's answer is stored when the record still
   names a CloudEvents identity; the service's `on_poison` hook may emit compensations.
2. On a topic routed by aggregate, a command on another partition than its aggregate's is
   forwarded there, unchanged but for the key and a hop count, and decided there.
3. Messages this processor handled before (same `source` and `id`) are skipped.
4. Runs of consecutive messages of one type go to the handler registered for that type, with
   the batch's `Work`: the service's state plus the effects to carry out.
5. The state is saved, the deadlines, the inbox (handled messages, replies) and the outbox are
   written, and ready replies are announced with NOTIFY when the transaction commits.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import orjson
from pydantic import TypeAdapter, ValidationError

from shared.contracts.base import ContractModel, Identifier, SourceText, utc_now
from shared.contracts.registry import MessageRegistry, RejectedRecord
from shared.engine.deadlines import DeadlineStore
from shared.engine.inbox import Handled, InboxStore
from shared.engine.messages import (
    FORWARD_HOPS_HEADER,
    FORWARDED_FROM_HEADER,
    NOTIFY_HEADER,
    NOTIFY_HEADER_VALUE,
    Incoming,
    OutgoingMessage,
    Record,
    ReplyKey,
    header,
)
from shared.engine.partition_handler import HandlerResult, PartitionBatch
from shared.engine.work import Work
from shared.kafka.producer import partition_for
from shared.logs import get_logger
from shared.observability import metrics

StateT = TypeVar("StateT", bound="ProcessorState")
REFUSED = "rejected"
"""The inbox type of a refused message: it does not count as handled, so a corrected re-send
with the same identity (or a redriven dead letter) is decided and replaces the refusal."""
FORWARD_HOPS_MAX = 2
"""A command is forwarded at most this many times; a partition count that keeps changing under
it would otherwise bounce it for ever. Past the bound it is dead-lettered (`misrouted`)."""


class ProcessorState(Protocol):
    """The service's decision state for one batch: loaded by its handlers, saved once."""

    async def save(self, connection: asyncpg.Connection, now: datetime) -> None: ...


Handler = Callable[[Work[StateT], Sequence[Incoming[Any]]], Awaitable[None]]
PoisonHook = Callable[
    [Work[StateT], Record, RejectedRecord, Mapping[str, Any] | None, ReplyKey | None], None
]
"""Called for every record refused on intake, with its JSON object when it is one and its
CloudEvents identity when valid (the cause to emit from): a saga leg that cannot even be
parsed can still emit its compensation instead of parking money."""


@dataclass(frozen=True, slots=True)
class TopicInput:
    """One topic a processor consumes."""

    topic: str
    registry: MessageRegistry
    aggregate_key: Callable[[Any], str] | None = None
    """For a topic routed by aggregate (a commands topic): the record key a message belongs
    under. Records on another partition than the key's are forwarded. None for events."""


@dataclass(frozen=True, slots=True)
class ProcessorSpec(Generic[StateT]):
    name: str
    """The consumer name: checkpoints, inbox rows and the consumer group are named after it."""
    schema: str
    source: str
    """The CloudEvents `source` of everything it emits."""
    inputs: tuple[TopicInput, ...]
    handlers: Mapping[type[ContractModel], Handler[StateT]]
    new_state: Callable[[asyncpg.Connection], StateT]
    scope_of: Callable[[Mapping[str, Any]], str | None] = lambda _: None
    """Who may read the stored answer of a refused record, from its raw `data`."""
    on_poison: PoisonHook[StateT] | None = None
    clock: Callable[[], datetime] = utc_now

    def __post_init__(self) -> None:
        for topic_input in self.inputs:
            for message_type in topic_input.registry.all():
                assert message_type.data_model in self.handlers, (
                    f"{self.name}: no handler for {message_type.name} on {topic_input.topic}"
                )


logger = get_logger(__name__)
_IDENTIFIER = TypeAdapter(Identifier)
_SOURCE = TypeAdapter(SourceText)


class Processor(Generic[StateT]):
    """Runs a `ProcessorSpec` as a partition handler on a partition owner."""

    def __init__(self, spec: ProcessorSpec[StateT], topic_of: Callable[[str], str]) -> None:
        self.spec = spec
        self._topic_of = topic_of
        self._inputs = {topic_of(item.topic): item for item in spec.inputs}
        self._inbox = InboxStore(spec.schema, spec.name)
        self._deadlines = DeadlineStore(spec.schema, spec.name)

    @property
    def topics(self) -> list[str]:
        return list(self._inputs)

    async def handle(self, connection: asyncpg.Connection, batch: PartitionBatch) -> HandlerResult:
        spec = self.spec
        work = Work(
            connection=connection, state=spec.new_state(connection), now=spec.clock(),
            source=spec.source, topic_of=self._topic_of,
        )  # fmt: skip
        topic_input = self._inputs[batch.topic]
        taken = self._take_in(work, batch, topic_input)
        known = await self._inbox.known(connection, [item.identity for item in taken])
        # A message handled before is skipped before anything else happens to it: a re-sent
        # copy that lands on the wrong partition must not be forwarded, nor refused, again.
        fresh = []
        for incoming in _first_sightings(taken, known):
            key = self._misrouted(incoming, batch, topic_input)
            if key is None:
                fresh.append(incoming)
            else:
                self._forward(work, incoming, key)
        for run in _runs_by_type(fresh):
            await spec.handlers[type(run[0].data)](work, run)
        await work.state.save(connection, work.now)
        await self._deadlines.save(
            connection, batch.topic, batch.partition, work.deadlines, work.cancelled
        )
        stored = await self._inbox.positions(connection, work.positions_wanted())
        replies, messages = work.finished_replies(stored)
        handled = [_handled(incoming, work.refused) for incoming in fresh]
        payloads = await self._inbox.save(connection, [*handled, *work.rejected], replies, work.now)
        await self._inbox.notify(connection, payloads)
        return HandlerResult(messages=messages, dead_letters=work.dead_letters)

    def _take_in(
        self, work: Work[StateT], batch: PartitionBatch, topic_input: TopicInput
    ) -> list[Incoming[Any]]:
        taken: list[Incoming[Any]] = []
        for record in batch.records:
            parsed = topic_input.registry.parse(record.value)
            if isinstance(parsed, RejectedRecord):
                self._refuse(work, record, parsed)
                continue
            notify = header(record, NOTIFY_HEADER) == NOTIFY_HEADER_VALUE
            taken.append(Incoming(record, parsed.envelope, parsed.data, notify))
        return taken

    @staticmethod
    def _misrouted(
        incoming: Incoming[Any], batch: PartitionBatch, topic_input: TopicInput
    ) -> str | None:
        """The aggregate key of a command on another partition than its key's, else None."""
        if topic_input.aggregate_key is None:
            return None
        key = topic_input.aggregate_key(incoming.data)
        if partition_for(key.encode(), batch.partition_count) == batch.partition:
            return None
        return key

    def _scope(self, data: Mapping[str, Any]) -> str | None:
        """Who may read a refusal: the service says; a failure to say hides it (operators)."""
        try:
            return self.spec.scope_of(data)
        except Exception as error:
            logger.error("scope_of failed; the answer is for operators only", error=repr(error))
            return None

    def _refuse(self, work: Work[StateT], record: Record, rejection: RejectedRecord) -> None:
        raw = _json_object(record.value)
        answer = None
        if raw is not None:
            identity = _identity_of(raw)
            data = raw.get("data")
            if identity is not None:
                answer = identity, self._scope(data if isinstance(data, dict) else {})
        work.reject_record(record, rejection.code, rejection.message, answer)
        if self.spec.on_poison is not None:
            # An exception here is an unforeseen error like any other: the batch is retried
            # and then the partition halts, because a lost compensation would strand money.
            self.spec.on_poison(work, record, rejection, raw, answer[0] if answer else None)

    def _forward(self, work: Work[StateT], incoming: Incoming[Any], key: str) -> None:
        record = incoming.record
        hops = _hops(record)
        if hops >= FORWARD_HOPS_MAX:
            work.reject(
                incoming, "misrouted",
                f"The command was forwarded {hops} times and still did not reach the partition"
                " of its key; the topic's partition count may be changing.",
                status=422, scope=self._scope(incoming.data.model_dump(mode="json")),
            )  # fmt: skip
            work.rejected.append(Handled(incoming.identity, REFUSED, incoming.notify))
            return
        kept = tuple(
            (name, value)
            for name, value in record.headers or ()
            if name not in (FORWARD_HOPS_HEADER, FORWARDED_FROM_HEADER)
        )
        origin = f"{record.topic}:{record.partition}:{record.offset}".encode()
        metrics.COMMANDS_FORWARDED.labels(self.spec.name).inc()
        work.forward(
            OutgoingMessage(
                topic=record.topic, key=key.encode(), value=record.value or b"",
                headers=(*kept, (FORWARDED_FROM_HEADER, origin),
                         (FORWARD_HOPS_HEADER, str(hops + 1).encode())),
                message_id=incoming.envelope.id,
            )
        )  # fmt: skip


def _handled(incoming: Incoming[Any], refused: set[ReplyKey]) -> Handled:
    refusal = incoming.identity in refused
    kind = REFUSED if refusal else incoming.envelope.type
    return Handled(incoming.identity, kind, incoming.notify)


def _hops(record: Record) -> int:
    value = header(record, FORWARD_HOPS_HEADER)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return FORWARD_HOPS_MAX


def _json_object(value: bytes | None) -> dict[str, Any] | None:
    try:
        document = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _identity_of(raw: Mapping[str, Any]) -> ReplyKey | None:
    """The CloudEvents identity of a refused record, when it names a valid one."""
    try:
        return ReplyKey(_SOURCE.validate_python(raw.get("source")),
                        _IDENTIFIER.validate_python(raw.get("id")))  # fmt: skip
    except ValidationError:
        return None


def _first_sightings(taken: Sequence[Incoming[Any]], known: set[ReplyKey]) -> list[Incoming[Any]]:
    """Messages never handled before, each once (a batch may hold a re-sent copy too)."""
    seen = set(known)
    fresh = []
    for item in taken:
        if item.identity not in seen:
            seen.add(item.identity)
            fresh.append(item)
    return fresh


def _runs_by_type(messages: Sequence[Incoming[Any]]) -> list[list[Incoming[Any]]]:
    """Consecutive messages of one type, in log order: each run goes to one handler call."""
    runs: list[list[Incoming[Any]]] = []
    for message in messages:
        if runs and type(runs[-1][-1].data) is type(message.data):
            runs[-1].append(message)
        else:
            runs.append([message])
    return runs
