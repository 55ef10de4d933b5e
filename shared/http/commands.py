"""The gateway's side of commands: publish, wait for the stored reply, answer it unchanged.

The gateway decides nothing. It appends the command to the log (`acks=all`), then waits for
the reply the processor stores in its inbox: PostgreSQL delivers a NOTIFY when the deciding
transaction commits, and a poll of the stored reply covers a missed notification. A command
that is (or may be) in the log but cannot be answered yet gets 503 or 504 with its
`command_id` and `Retry-After`; `GET /<service>/commands/{id}` gives its answer later.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator

import orjson
from starlette.responses import Response

from shared.contracts.envelope import CloudEvent
from shared.engine.inbox import ReplyReader, StoredReply
from shared.engine.messages import ReplyKey
from shared.http.errors import DEPENDENCY_ERRORS, DomainHTTPError, json_response, safe_text
from shared.kafka.command_publisher import CommandPublisher
from shared.observability.metrics import COMMAND_OUTCOME_SECONDS
from shared.postgres.notify import NotificationHub

GATEWAY_SOURCE = "ledgerbus/gateway"
"""The CloudEvents `source` of every command the gateway publishes."""
REPLY_POLL_INTERVAL_SECONDS = 0.5
"""How often a waiting request re-reads its stored reply in case a NOTIFY was missed."""
COMMAND_PUBLISH_TIMEOUT_SECONDS = 10.0
"""A publish the broker has not acknowledged by then is answered 503; it may still land."""
RETRY_AFTER_SECONDS = 1
COMMAND_SOURCES_SHOWN_MAX = 10

ReplyWait = Callable[[float], Awaitable[StoredReply | None]]


class ReplyWaiter:
    """Waits for replies to the commands this gateway published (its own `source`)."""

    def __init__(
        self, hub: NotificationHub, channel: str, reader: ReplyReader, source: str
    ) -> None:
        self._reader = reader
        self._source = source
        self._waiting: dict[str, list[asyncio.Future[StoredReply | None]]] = {}
        """Several requests may wait for one command (a client retrying with the same
        Idempotency-Key while the first request still waits): each is told."""
        hub.subscribe(channel, self._on_payload)

    def _on_payload(self, payload: str) -> None:
        note = orjson.loads(payload)
        if note.get("source") != self._source:
            return
        heard = None
        if "status" in note:
            heard = StoredReply(note["status"], orjson.dumps(note["body"]), None)
        # Without a status the reply was too large to notify: it is read from the table.
        for future in self._waiting.get(note.get("message_id", ""), ()):
            if not future.done():
                future.set_result(heard)

    @contextlib.contextmanager
    def expect(self, message_id: str) -> Iterator[ReplyWait]:
        """Register interest before publishing, so a reply can never arrive unheard."""
        future: asyncio.Future[StoredReply | None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(message_id, [])
        waiting.append(future)
        try:
            yield lambda timeout: self._wait(message_id, future, timeout)
        finally:
            waiting.remove(future)
            if not waiting:
                self._waiting.pop(message_id, None)

    async def _wait(
        self, message_id: str, future: asyncio.Future[StoredReply | None], timeout_seconds: float
    ) -> StoredReply | None:
        key = ReplyKey(self._source, message_id)
        deadline = time.monotonic() + timeout_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return await self._reader.read(key)
            try:
                heard = await asyncio.wait_for(
                    asyncio.shield(future), min(remaining, REPLY_POLL_INTERVAL_SECONDS)
                )
            except TimeoutError:
                heard = None
            if heard is not None:
                return heard
            stored = await self._reader.read(key)
            if stored is not None:
                return stored


class CommandSender:
    """Publishes a service's commands and answers with their replies."""

    def __init__(
        self,
        *,
        service: str,
        publisher: CommandPublisher,
        waiter: ReplyWaiter,
        topic: str,
        timeout_seconds: float,
    ) -> None:
        self._service = service
        self._publisher = publisher
        self._waiter = waiter
        self._topic = topic
        self._timeout_seconds = timeout_seconds

    def _later(self, status: int, code: str, detail: str, command_id: str) -> DomainHTTPError:
        return DomainHTTPError(
            status, code,
            f"{detail} Ask GET /{self._service}/commands/{command_id} for its answer.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, extra={"command_id": command_id},
        )  # fmt: skip

    async def send(self, key: str, envelope: CloudEvent) -> Response:
        """Publish the command and answer with its reply; 504 when none came in time."""
        reply = await self.request(key, envelope)
        if reply is None:
            raise self._later(
                504, "outcome_timeout",
                f"No processor answered within {self._timeout_seconds:g} s. The command is in"
                " the log and will be decided.", envelope.id,
            )  # fmt: skip
        return Response(reply.body, status_code=reply.status, media_type="application/json")

    async def request(self, key: str, envelope: CloudEvent) -> StoredReply | None:
        """Publish the command and wait for its reply; None when none came in time. A publish
        the broker did not confirm, or a reply that cannot be read, is a 503 naming the
        command id."""
        command_id = envelope.id
        with (
            self._waiter.expect(command_id) as answer,
            COMMAND_OUTCOME_SECONDS.labels(self._service).time(),
        ):
            try:
                await asyncio.wait_for(
                    self._publisher.publish(self._topic, key, envelope),
                    COMMAND_PUBLISH_TIMEOUT_SECONDS,
                )
            except Exception as error:
                raise self._later(
                    503, "broker_unavailable",
                    f"The broker did not confirm the command ({safe_text(error, 200)}); it may"
                    " or may not be in the log.", command_id,
                ) from error  # fmt: skip
            try:
                return await answer(self._timeout_seconds)
            except DEPENDENCY_ERRORS as error:
                raise self._later(
                    503, "dependency_unavailable",
                    "The command is in the log and will be decided, but its answer cannot be"
                    " read now.", command_id,
                ) from error  # fmt: skip


async def stored_reply_response(
    reader: ReplyReader, command_id: str, *, scope: str | None, source: str | None
) -> Response:
    """`GET /<service>/commands/{id}`: the stored answer, 202 while pending.

    A command is named by its `source` and `id`; the id alone is enough unless two sources
    visible to the caller used it, which answers 409 listing them.
    """
    if source is None:
        sources = await reader.sources_of(command_id, scope)
        if len(sources) > 1:
            raise DomainHTTPError(
                409, "ambiguous_command_id",
                "Several sources sent a command with this id; add ?source= with one of: "
                + ", ".join(safe_text(item, 100) for item in sources[:COMMAND_SOURCES_SHOWN_MAX]),
            )  # fmt: skip
        source = sources[0] if sources else None
    stored = None if source is None else await reader.read(ReplyKey(source, command_id))
    if stored is None or (scope is not None and stored.scope != scope):
        return json_response({"command_id": command_id, "status": "pending"}, 202)
    return Response(stored.body, status_code=stored.status, media_type="application/json")
