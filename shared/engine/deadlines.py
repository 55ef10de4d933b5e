"""Due-time commands: a handler schedules a command for later; the owner publishes it then.

A saga leg that may never be answered schedules its own deadline (for example "cancel this
transfer's credit at 12:00:30"). The row is written in the handler's transaction, so it exists
exactly when the decision does; a later handler may cancel it by name. The owner of the
partition that scheduled it moves due rows into the outbox (one transaction, fenced by the
owner's checkpoint) and publishes them like any other message, so a deadline fires once per
owner epoch at most and its command id is deterministic (a repeat is deduplicated downstream).
"""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from shared.engine.messages import OutgoingMessage
from shared.engine.outbox import decode_headers, encode_headers
from shared.engine.work import Deadline
from shared.postgres.migrations import quote_schema

DEADLINES_TAKEN_PER_SWEEP_MAX = 1_000


class DeadlineStore:
    def __init__(self, schema: str, consumer: str) -> None:
        self._table = f"{quote_schema(schema)}.deadlines"
        self.consumer = consumer

    async def save(
        self,
        connection: asyncpg.Connection,
        source_topic: str,
        source_partition: int,
        deadlines: Sequence[Deadline],
        cancelled: Sequence[str],
    ) -> None:
        """Cancellations first: a batch may cancel and re-schedule one name."""
        if cancelled:
            await connection.execute(
                f"DELETE FROM {self._table} WHERE consumer = $1 AND name = ANY($2::text[])",
                self.consumer,
                list(cancelled),
            )
        if not deadlines:
            return
        messages = [deadline.message for deadline in deadlines]
        # The first schedule of a name stands: re-handling a message schedules nothing new.
        await connection.execute(
            f"INSERT INTO {self._table} (consumer, name, source_topic, source_partition, due_at,"
            " topic, key, value, headers, message_id) SELECT $1, d.name, $2, $3, d.due_at,"
            " d.topic, d.key, d.value, d.headers::jsonb, d.message_id FROM unnest($4::text[],"
            " $5::timestamptz[], $6::text[], $7::bytea[], $8::bytea[], $9::text[], $10::text[])"
            " AS d(name, due_at, topic, key, value, headers, message_id)"
            " ON CONFLICT (consumer, name) DO NOTHING",
            self.consumer,
            source_topic,
            source_partition,
            [deadline.name for deadline in deadlines],
            [deadline.due_at for deadline in deadlines],
            [message.topic for message in messages],
            [message.key for message in messages],
            [message.value for message in messages],
            [encode_headers(message.headers) for message in messages],
            [message.message_id for message in messages],
        )

    async def take_due(
        self, connection: asyncpg.Connection, topic: str, partition: int, now: datetime
    ) -> list[OutgoingMessage]:
        """Remove and return the commands due on this partition, oldest first."""
        rows = await connection.fetch(
            f"DELETE FROM {self._table} WHERE (consumer, name) IN (SELECT consumer, name"
            f" FROM {self._table} WHERE consumer = $1 AND source_topic = $2"
            " AND source_partition = $3 AND due_at <= $4 ORDER BY due_at LIMIT $5"
            " FOR UPDATE SKIP LOCKED) RETURNING due_at, topic, key, value,"
            " headers::text AS headers, message_id",
            self.consumer,
            topic,
            partition,
            now,
            DEADLINES_TAKEN_PER_SWEEP_MAX,
        )
        return [
            OutgoingMessage(
                topic=row["topic"],
                key=row["key"],
                value=row["value"],
                headers=decode_headers(row["headers"]),
                message_id=row["message_id"],
            )
            for row in sorted(rows, key=lambda row: row["due_at"])
        ]
