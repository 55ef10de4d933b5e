"""The unit of work of one partition batch: the service's state plus everything it decided.

A handler receives `Work[State]`: `state` is the service's own decision state for the batch
(loaded and saved by the service), and the methods record effects the engine carries out in
the same transaction (outbox, inbox, deadlines) or right after it (publishing).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg

from shared.contracts.base import ContractModel
from shared.contracts.envelope import CLOUDEVENTS_CONTENT_TYPE, encode_event
from shared.engine.dead_letters import dead_letter
from shared.engine.ids import derived_id
from shared.engine.inbox import Handled, Reply, StoredPosition, encode_body
from shared.engine.messages import (
    CONTENT_TYPE_HEADER,
    Emitted,
    Incoming,
    OutgoingMessage,
    Record,
    ReplyKey,
)
from shared.engine.partition_handler import TransientError

StateT = TypeVar("StateT")
MESSAGE_HEADERS = ((CONTENT_TYPE_HEADER, CLOUDEVENTS_CONTENT_TYPE.encode()),)
DEADLINE_NAME_MAX_CHARACTERS = 300


@dataclass(frozen=True, slots=True)
class PendingReply:
    to: ReplyKey
    status: int
    body: str
    scope: str | None
    event: Emitted | None
    position_of: ReplyKey | None


@dataclass(frozen=True, slots=True)
class Deadline:
    """A command to publish once `due_at` passes, unless cancelled by name before."""

    name: str
    due_at: datetime
    message: OutgoingMessage


class Work(Generic[StateT]):
    def __init__(
        self,
        *,
        connection: asyncpg.Connection,
        state: StateT,
        now: datetime,
        source: str,
        topic_of: Callable[[str], str],
    ) -> None:
        self.connection = connection
        self.state = state
        self.now = now
        """One clock reading per batch: every decision of the batch is stamped with it."""
        self._source = source
        self._topic_of = topic_of
        self.messages: list[OutgoingMessage] = []
        self._dead_letters: list[tuple[int, OutgoingMessage]] = []
        self.replies: list[PendingReply] = []
        self.rejected: list[Handled] = []
        self.refused: set[ReplyKey] = set()
        """Messages this batch refused (`reject`): stored as refusals, not as handled."""
        self.deadlines: list[Deadline] = []
        self.cancelled: list[str] = []
        self._emitted_per_cause: dict[ReplyKey, int] = {}

    def emit(
        self,
        cause: Incoming[Any] | ReplyKey,
        *,
        topic: str,
        key: str,
        message_type: str,
        data: ContractModel,
    ) -> Emitted:
        """Publish an event or a command after commit; its id derives from its cause (a
        message being handled, or the identity of a refused record in `on_poison`)."""
        self.messages.append(self._build(cause, topic, key, message_type, data))
        return Emitted(self.messages[-1].message_id or "", len(self.messages) - 1)

    def reply(
        self,
        to: ReplyKey,
        status: int,
        body: Mapping[str, Any],
        *,
        scope: str | None,
        event: Emitted | None = None,
        position_of: ReplyKey | None = None,
    ) -> None:
        """Answer the command `to` (this batch's, or a saga's origin): the first answer stands.

        With `event`, the answer gets that event's position once published; with
        `position_of`, the position another command was answered with (a retry's answer).
        """
        assert event is None or position_of is None, "one source of position at most"
        self.replies.append(PendingReply(to, status, encode_body(body), scope, event, position_of))

    def reject(
        self, incoming: Incoming[Any], code: str, detail: str, *, status: int, scope: str | None
    ) -> None:
        """A deterministic refusal of the record itself: dead-letter it and store the answer."""
        self._dead_letter(incoming.record, code, detail)
        self.refused.add(incoming.identity)
        self.reply(incoming.identity, status, {"detail": detail, "code": code}, scope=scope)

    def reject_record(
        self, record: Record, code: str, detail: str, answer: tuple[ReplyKey, str | None] | None
    ) -> None:
        """Intake's refusal of a record that is not a valid message; `answer` is its identity
        and scope when the record still names them, so the sender can read why."""
        self._dead_letter(record, code, detail)
        if answer is not None:
            identity, scope = answer
            self.rejected.append(Handled(identity, "rejected", notify=False))
            self.refused.add(identity)
            self.reply(identity, 422, {"detail": detail, "code": code}, scope=scope)

    def _dead_letter(self, record: Record, code: str, detail: str) -> None:
        self._dead_letters.append((record.offset, dead_letter(record, code, detail)))

    @property
    def dead_letters(self) -> list[OutgoingMessage]:
        """In log order: intake refusals are found before a handler's, but read as they came."""
        return [letter for _, letter in sorted(self._dead_letters, key=lambda item: item[0])]

    def forward(self, message: OutgoingMessage) -> None:
        """Re-publish a record elsewhere as it is (a command on the wrong partition)."""
        self.messages.append(message)

    def schedule(
        self,
        cause: Incoming[Any] | ReplyKey,
        *,
        name: str,
        due_at: datetime,
        topic: str,
        key: str,
        message_type: str,
        data: ContractModel,
    ) -> None:
        """Publish a command at `due_at` (a saga leg's deadline) unless `cancel(name)` first."""
        assert 0 < len(name) <= DEADLINE_NAME_MAX_CHARACTERS, "deadline names are bounded"
        self.deadlines.append(
            Deadline(name, due_at, self._build(cause, topic, key, message_type, data))
        )

    def cancel(self, name: str) -> None:
        self.cancelled.append(name)

    def _build(
        self,
        cause: Incoming[Any] | ReplyKey,
        topic: str,
        key: str,
        message_type: str,
        data: ContractModel,
    ) -> OutgoingMessage:
        if isinstance(cause, ReplyKey):
            identity, correlation = cause, cause.message_id
        else:
            identity = cause.identity
            correlation = cause.envelope.correlationid or cause.envelope.id
        index = self._emitted_per_cause.get(identity, 0)
        self._emitted_per_cause[identity] = index + 1
        message_id, value = encode_event(
            message_type=message_type,
            source=self._source,
            subject=key,
            data=data,
            correlation_id=correlation,
            causation_id=identity.message_id,
            message_id=derived_id(identity.source, identity.message_id, index),
        )
        return OutgoingMessage(
            self._topic_of(topic), key.encode(), value, MESSAGE_HEADERS, message_id=message_id
        )

    def finished_replies(
        self, stored_positions: Mapping[ReplyKey, StoredPosition]
    ) -> tuple[list[Reply], list[OutgoingMessage]]:
        """Resolve every reply's position and link replies to the messages they wait for.

        `stored_positions` holds the positions of earlier replies named by `position_of`.
        """
        messages = list(self.messages)
        by_key = {pending.to: pending for pending in self.replies}
        replies = []
        for pending in self.replies:
            event = pending.event
            position = None
            if pending.position_of is not None:
                earlier = by_key.get(pending.position_of)
                if earlier is not None and earlier is not pending:
                    event = earlier.event
                elif pending.position_of not in stored_positions:
                    raise RuntimeError(f"no stored reply {pending.position_of} to take from")
                else:
                    stored = stored_positions[pending.position_of]
                    if stored.awaits:
                        raise TransientError(f"the reply {pending.position_of} awaits a position")
                    position = stored.position
            if event is not None:
                linked = messages[event.index]
                messages[event.index] = replace(linked, reply_keys=(*linked.reply_keys, pending.to))
            replies.append(
                Reply(pending.to, pending.status, pending.body, pending.scope, position,
                      awaits_position=event is not None)
            )  # fmt: skip
        return replies, messages

    def positions_wanted(self) -> list[ReplyKey]:
        """Earlier replies whose positions this batch's replies take."""
        in_batch = {pending.to for pending in self.replies}
        return [
            pending.position_of
            for pending in self.replies
            if pending.position_of is not None and pending.position_of not in in_batch
        ]
