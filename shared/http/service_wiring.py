"""What every service's routes need from the gateway, built one way: the command sender and its
reply waiter, and the read-your-writes watch on the projector's checkpoints.

Each service's `configure` calls `commands_and_reads` once at start; its routes then send
commands and wait for positions the same way in every service.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from shared.engine.inbox import ReplyReader, replies_channel
from shared.http.commands import GATEWAY_SOURCE, CommandSender, ReplyWaiter
from shared.http.gateway_context import GatewayContext
from shared.http.read_positions import ReadPositions
from shared.postgres.migrations import quote_schema
from shared.waiters import CheckpointWatcher


@dataclass(frozen=True, slots=True)
class ServiceTopics:
    """Where a service's commands go and how its read model is followed."""

    service: str
    schema: str
    processor: str
    projector: str
    commands_topic: str
    events_topic: str
    positions_channel: str


@dataclass(frozen=True, slots=True)
class CommandsAndReads:
    replies: ReplyReader
    sender: CommandSender
    checkpoints: CheckpointWatcher
    positions: ReadPositions
    events_partitions: int


class ProjectorCheckpoints:
    """The projector's checkpoint of each partition of the events topic."""

    def __init__(self, pool: asyncpg.Pool, schema: str, projector: str, topic: str) -> None:
        self._pool = pool
        self._query = (
            f"SELECT partition, next_offset FROM {quote_schema(schema)}.checkpoints"
            " WHERE consumer = $1 AND topic = $2"
        )
        self._projector = projector
        self._topic = topic

    async def __call__(self) -> Mapping[int, int]:
        rows = await self._pool.fetch(self._query, self._projector, self._topic)
        return {row["partition"]: row["next_offset"] for row in rows}


async def commands_and_reads(context: GatewayContext, topics: ServiceTopics) -> CommandsAndReads:
    """Build the pieces and subscribe them to the gateway's notification hub."""
    settings, pool, hub = context.settings, context.pool, context.hub
    events_topic = settings.topic(topics.events_topic)
    events_partitions = len(await context.lag.end_offsets(events_topic))
    replies = ReplyReader(pool, topics.schema, topics.processor)
    waiter = ReplyWaiter(hub, replies_channel(topics.schema), replies, GATEWAY_SOURCE)
    sender = CommandSender(
        service=topics.service, publisher=context.publisher, waiter=waiter,
        topic=settings.topic(topics.commands_topic),
        timeout_seconds=settings.ledgerbus_command_timeout_seconds,
    )  # fmt: skip
    read_checkpoints = ProjectorCheckpoints(pool, topics.schema, topics.projector, events_topic)
    checkpoints = CheckpointWatcher(hub, topics.positions_channel, read_checkpoints)
    positions = ReadPositions(
        f"{topics.service} read model", checkpoints, context.lag, events_topic,
        topics.events_topic, events_partitions,
    )  # fmt: skip
    return CommandsAndReads(replies, sender, checkpoints, positions, events_partitions)
