"""The inbox: which messages a processor handled, and the reply each command got.

A processor handles a message at most once per CloudEvents identity (`source` + `id`, the
pair the specification makes unique): a redelivered or re-sent command finds its row and is
skipped. The row also stores the command's reply (status and JSON body), written by whichever
owner finishes the work: the same batch for a simple command, the last leg of a saga for a
transfer. The gateway waits for replies by NOTIFY on `<schema>_replies` and reads them here.

A reply may answer with the position of an event; the body then gets a `position` once the
event is published (`reply_awaits_position` until then).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from shared.engine.messages import PublishedMessage, ReplyKey
from shared.postgres.migrations import quote_schema

NOTIFY_PAYLOAD_MAX_BYTES = 7_900
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; a larger reply is announced by
its key alone and read from the table."""
JSON_OPTIONS = orjson.OPT_UTC_Z


def replies_channel(schema: str) -> str:
    return f"{schema}_replies"


def encode_body(body: Mapping[str, Any]) -> str:
    """Reply bodies keep their key order, so every rendering of one reply is byte-identical."""
    return orjson.dumps(body, default=_fallback, option=JSON_OPTIONS).decode()


def _fallback(value: Any) -> str:
    if type(value).__name__ == "UUID":
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def render_body(body: str, position: str | None) -> bytes:
    """The body as answered: the stored JSON, with `position` added when the reply has one."""
    if position is None:
        return body.encode()
    document = orjson.loads(body)
    assert isinstance(document, dict), "reply bodies are JSON objects"
    document["position"] = position
    return orjson.dumps(document, option=JSON_OPTIONS)


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply to store: to whom, what, for whom it is visible, and its position if known."""

    to: ReplyKey
    status: int
    body: str
    scope: str | None
    """Who may read it (an app, a user); None: only operators."""
    position: str | None = None
    awaits_position: bool = False

    def __post_init__(self) -> None:
        assert 100 <= self.status <= 599, "a reply status is an HTTP status"
        assert not (self.position is not None and self.awaits_position), "one or the other"


@dataclass(frozen=True, slots=True)
class Handled:
    """A message taken in by a processor (handled, or refused with a stored answer)."""

    identity: ReplyKey
    message_type: str
    notify: bool


@dataclass(frozen=True, slots=True)
class StoredPosition:
    position: str | None
    awaits: bool
    """The reply names an event that is not published yet."""


@dataclass(frozen=True, slots=True)
class StoredReply:
    status: int
    body: bytes
    scope: str | None


def notification(to: ReplyKey, status: int, body: bytes) -> str:
    """The NOTIFY payload for a ready reply: its key, status and rendered body."""
    note = {"source": to.source, "message_id": to.message_id, "status": status}
    text = orjson.dumps(note | {"body": orjson.Fragment(body)}).decode()
    if len(text.encode()) < NOTIFY_PAYLOAD_MAX_BYTES:
        return text
    return orjson.dumps({"source": to.source, "message_id": to.message_id}).decode()


class InboxStore:
    """SQL for one schema's inbox, as seen by one consumer."""

    def __init__(self, schema: str, consumer: str) -> None:
        self.table = f"{quote_schema(schema)}.inbox"
        self.consumer = consumer
        self.channel = replies_channel(schema)

    async def known(
        self, connection: asyncpg.Connection, identities: Sequence[ReplyKey]
    ) -> set[ReplyKey]:
        """Which of these messages this consumer handled before."""
        if not identities:
            return set()
        rows = await connection.fetch(
            f"SELECT i.source, i.message_id FROM {self.table} i JOIN unnest($2::text[],"
            " $3::text[]) AS k(source, message_id) USING (source, message_id)"
            " WHERE i.consumer = $1 AND i.message_type <> 'rejected'",
            self.consumer,
            [identity.source for identity in identities],
            [identity.message_id for identity in identities],
        )
        return {ReplyKey(row["source"], row["message_id"]) for row in rows}

    async def positions(
        self, connection: asyncpg.Connection, keys: Sequence[ReplyKey]
    ) -> dict[ReplyKey, StoredPosition]:
        """The positions stored replies answered with, and whether one still awaits it."""
        if not keys:
            return {}
        rows = await connection.fetch(
            f"SELECT i.source, i.message_id, i.reply_position, i.reply_awaits_position"
            f" FROM {self.table} i"
            " JOIN unnest($2::text[], $3::text[]) AS k(source, message_id)"
            " USING (source, message_id) WHERE i.consumer = $1",
            self.consumer,
            [key.source for key in keys],
            [key.message_id for key in keys],
        )
        return {
            ReplyKey(r["source"], r["message_id"]): StoredPosition(
                r["reply_position"], r["reply_awaits_position"]
            )
            for r in rows
        }

    async def save(
        self,
        connection: asyncpg.Connection,
        handled: Sequence[Handled],
        replies: Sequence[Reply],
        now: datetime,
    ) -> list[str]:
        """Record the handled messages with their own replies, and answer earlier ones (a
        saga's origin); returns NOTIFY payloads for the replies that are ready and awaited."""
        own = {item.identity for item in handled}
        by_key = {reply.to: reply for reply in replies if reply.to in own}
        await self._insert(connection, handled, by_key, now)
        ready = [
            notification(reply.to, reply.status, render_body(reply.body, reply.position))
            for reply in by_key.values()
            if not reply.awaits_position and _notify_of(handled, reply.to)
        ]
        later = [reply for reply in replies if reply.to not in own]
        if later:
            ready += await self._answer_earlier(connection, later, now)
        return ready

    async def _insert(
        self,
        connection: asyncpg.Connection,
        handled: Sequence[Handled],
        replies: Mapping[ReplyKey, Reply],
        now: datetime,
    ) -> None:
        if not handled:
            return
        matched = [replies.get(item.identity) for item in handled]
        await connection.execute(
            f"INSERT INTO {self.table} (consumer, source, message_id, message_type, handled_at,"
            " reply_status, reply_body, reply_scope, reply_position, reply_awaits_position,"
            " notify, replied_at) SELECT $1, h.source, h.message_id, h.message_type, $2,"
            " h.status, h.body, h.scope, h.position, h.awaits, h.notify,"
            " CASE WHEN h.status IS NULL THEN NULL ELSE $2::timestamptz END"
            " FROM unnest($3::text[], $4::text[], $5::text[],"
            " $6::smallint[], $7::text[], $8::text[], $9::text[], $10::boolean[],"
            " $11::boolean[]) AS h(source, message_id, message_type, status, body, scope,"
            " position, awaits, notify) ON CONFLICT (consumer, source, message_id) DO UPDATE"
            " SET message_type = EXCLUDED.message_type, handled_at = EXCLUDED.handled_at,"
            " reply_status = EXCLUDED.reply_status, reply_body = EXCLUDED.reply_body,"
            " reply_scope = EXCLUDED.reply_scope, reply_position = EXCLUDED.reply_position,"
            " reply_awaits_position = EXCLUDED.reply_awaits_position, notify = EXCLUDED.notify,"
            " replied_at = EXCLUDED.replied_at WHERE inbox.message_type = 'rejected'",
            self.consumer,
            now,
            [item.identity.source for item in handled],
            [item.identity.message_id for item in handled],
            [item.message_type for item in handled],
            [reply.status if reply else None for reply in matched],
            [reply.body if reply else None for reply in matched],
            [reply.scope if reply else None for reply in matched],
            [reply.position if reply else None for reply in matched],
            [reply.awaits_position if reply else False for reply in matched],
            [item.notify for item in handled],
        )

    async def _answer_earlier(
        self, connection: asyncpg.Connection, replies: Sequence[Reply], now: datetime
    ) -> list[str]:
        """First reply wins: a command already answered keeps its answer."""
        rows = await connection.fetch(
            f"UPDATE {self.table} i SET reply_status = u.status, reply_body = u.body,"
            " reply_scope = u.scope, reply_position = u.position,"
            " reply_awaits_position = u.awaits, replied_at = $2"
            " FROM unnest($3::text[], $4::text[], $5::smallint[], $6::text[], $7::text[],"
            " $8::text[], $9::boolean[]) AS u(source, message_id, status, body, scope, position,"
            " awaits) WHERE i.consumer = $1 AND i.source = u.source"
            " AND i.message_id = u.message_id AND i.reply_status IS NULL"
            " RETURNING i.source, i.message_id, i.reply_status, i.reply_body, i.reply_position,"
            " i.reply_awaits_position, i.notify",
            self.consumer,
            now,
            [reply.to.source for reply in replies],
            [reply.to.message_id for reply in replies],
            [reply.status for reply in replies],
            [reply.body for reply in replies],
            [reply.scope for reply in replies],
            [reply.position for reply in replies],
            [reply.awaits_position for reply in replies],
        )
        return [_payload(row) for row in rows if row["notify"] and not row["reply_awaits_position"]]

    async def record_positions(
        self, connection: asyncpg.Connection, published: Sequence[PublishedMessage]
    ) -> list[str]:
        """Give waiting replies the positions of the messages just published; returns the
        NOTIFY payloads of those someone waits for."""
        keys = [(key, item.position) for item in published for key in item.message.reply_keys]
        if not keys:
            return []
        rows = await connection.fetch(
            f"UPDATE {self.table} i SET reply_position = u.position,"
            " reply_awaits_position = false FROM unnest($2::text[], $3::text[], $4::text[])"
            " AS u(source, message_id, position) WHERE i.consumer = $1 AND i.source = u.source"
            " AND i.message_id = u.message_id AND i.reply_awaits_position"
            " RETURNING i.source, i.message_id, i.reply_status, i.reply_body, i.reply_position,"
            " i.notify",
            self.consumer,
            [key.source for key, _ in keys],
            [key.message_id for key, _ in keys],
            [position for _, position in keys],
        )
        return [_payload(row) for row in rows if row["notify"]]

    async def notify(self, connection: asyncpg.Connection, payloads: Sequence[str]) -> None:
        """Delivered when the surrounding transaction commits: exactly when replies are durable."""
        if payloads:
            await connection.execute(
                "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
                self.channel,
                list(payloads),
            )


def _notify_of(handled: Sequence[Handled], key: ReplyKey) -> bool:
    return any(item.notify for item in handled if item.identity == key)


def _payload(row: asyncpg.Record) -> str:
    key = ReplyKey(row["source"], row["message_id"])
    return notification(
        key, row["reply_status"], render_body(row["reply_body"], row["reply_position"])
    )


class ReplyReader:
    """The gateway's side: read a command's stored reply (or learn it is still pending)."""

    def __init__(self, pool: asyncpg.Pool, schema: str, consumer: str) -> None:
        self._pool = pool
        self._table = f"{quote_schema(schema)}.inbox"
        self._consumer = consumer

    async def read(self, key: ReplyKey) -> StoredReply | None:
        row = await self._pool.fetchrow(
            f"SELECT reply_status, reply_body, reply_scope, reply_position FROM {self._table}"
            " WHERE consumer = $1 AND source = $2 AND message_id = $3"
            " AND reply_status IS NOT NULL AND NOT reply_awaits_position",
            self._consumer,
            key.source,
            key.message_id,
        )
        if row is None:
            return None
        body = render_body(row["reply_body"], row["reply_position"])
        return StoredReply(row["reply_status"], body, row["reply_scope"])

    async def sources_of(self, message_id: str, scope: str | None) -> list[str]:
        """The sources that sent a command with this id and are visible in `scope` (None: all)."""
        rows = await self._pool.fetch(
            f"SELECT source FROM {self._table} WHERE consumer = $1 AND message_id = $2"
            " AND ($3::text IS NULL OR reply_scope = $3) ORDER BY source LIMIT 10",
            self._consumer,
            message_id,
            scope,
        )
        return [row["source"] for row in rows]
