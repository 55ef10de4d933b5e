"""The outbox: messages decided in a transaction, published by the partition owner after commit.

Each row also names the stored replies that wait for the message's position, so a successor
that publishes a crashed owner's leftovers completes those replies too.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from shared.engine.messages import Header, OutgoingMessage, ReplyKey
from shared.postgres.migrations import quote_schema

OUTBOX_FLUSH_BATCH_MESSAGES = 5_000
"""Leftovers of a crashed owner are published in chunks of this many, oldest first."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    outbox_id: int
    message: OutgoingMessage


class OutboxStore:
    def __init__(self, schema: str, consumer: str) -> None:
        table = f"{quote_schema(schema)}.outbox"
        self.consumer = consumer
        self._insert = (
            f"INSERT INTO {table} (consumer, source_topic, source_partition, topic, key, value,"
            " headers, message_id, reply_keys) SELECT $1, $2, $3, m.topic, m.key, m.value,"
            " m.headers::jsonb, m.message_id, m.reply_keys::jsonb FROM unnest($4::text[],"
            " $5::bytea[], $6::bytea[], $7::text[], $8::text[], $9::text[])"
            " AS m(topic, key, value, headers, message_id, reply_keys) RETURNING id"
        )
        self._pending = (
            "SELECT id, topic, key, value, headers::text AS headers, message_id,"
            f" reply_keys::text AS reply_keys FROM {table}"
            " WHERE consumer = $1 AND source_topic = $2 AND source_partition = $3"
            " ORDER BY id LIMIT $4"
        )
        self._delete = f"DELETE FROM {table} WHERE id = ANY($1::bigint[])"

    async def add(
        self,
        connection: asyncpg.Connection,
        source_topic: str,
        source_partition: int,
        messages: Sequence[OutgoingMessage],
    ) -> list[StoredMessage]:
        if not messages:
            return []
        rows = await connection.fetch(
            self._insert,
            self.consumer,
            source_topic,
            source_partition,
            [message.topic for message in messages],
            [message.key for message in messages],
            [message.value for message in messages],
            [encode_headers(message.headers) for message in messages],
            [message.message_id for message in messages],
            [_encode_reply_keys(message.reply_keys) for message in messages],
        )
        # INSERT ... SELECT FROM unnest keeps the input order, so ids follow the messages.
        return [
            StoredMessage(row["id"], message) for row, message in zip(rows, messages, strict=True)
        ]

    async def pending(
        self, connection: asyncpg.Connection, source_topic: str, source_partition: int
    ) -> list[StoredMessage]:
        rows = await connection.fetch(
            self._pending,
            self.consumer,
            source_topic,
            source_partition,
            OUTBOX_FLUSH_BATCH_MESSAGES,
        )
        return [
            StoredMessage(
                row["id"],
                OutgoingMessage(
                    topic=row["topic"],
                    key=row["key"],
                    value=row["value"],
                    headers=decode_headers(row["headers"]),
                    message_id=row["message_id"],
                    reply_keys=_decode_reply_keys(row["reply_keys"]),
                ),
            )
            for row in rows
        ]

    async def remove(self, connection: asyncpg.Connection, outbox_ids: Sequence[int]) -> None:
        await connection.execute(self._delete, list(outbox_ids))


def encode_headers(headers: Sequence[Header]) -> str:
    """Header values are bytes or null; JSON keeps bytes as hex so any byte survives."""
    return orjson.dumps(
        [[name, None if value is None else value.hex()] for name, value in headers]
    ).decode()


def decode_headers(text: str) -> tuple[Header, ...]:
    return tuple(
        (name, None if value is None else bytes.fromhex(value))
        for name, value in orjson.loads(text)
    )


def _encode_reply_keys(keys: Sequence[ReplyKey]) -> str | None:
    return orjson.dumps([list(key) for key in keys]).decode() if keys else None


def _decode_reply_keys(text: str | None) -> tuple[ReplyKey, ...]:
    if text is None:
        return ()
    return tuple(ReplyKey(source, message_id) for source, message_id in orjson.loads(text))
