"""How every consumer group stands, per partition: ownership, halts, lag and progress.

Read from the checkpoints (PostgreSQL) and the true end of each log (Kafka). A partition is
- unowned when its owner's heartbeat is older than three heartbeat intervals (the owner died
  and its group has not handed the partition to another member yet),
- halted when its owner stopped it rather than step over a record (the reason is stored),
- stalled when records wait (lag > 0) but its checkpoint has not moved for a while.
A group that never ran (no heartbeat at all, or all released by a clean stop) is reported as
such but does not count against readiness: a service deliberately not running is not broken.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.kafka.lag import LagReader
from shared.postgres.migrations import quote_schema

OWNER_HEARTBEAT_STALE_SECONDS = 3.0
PROGRESS_STALL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ConsumerWatch:
    """One consumer of one topic: where its checkpoints live and which log it reads."""

    schema: str
    consumer: str
    topic: str
    """The topic as the broker knows it (with any prefix)."""


class ConsumersNotReadyError(RuntimeError):
    """Some partition is unowned, halted or stalled; the message names each."""


async def consumer_report(
    database: asyncpg.Pool | asyncpg.Connection, lag: LagReader, watch: ConsumerWatch
) -> tuple[dict[str, Any], list[str]]:
    """The group's per-partition state and the problems that make it not ready."""
    rows = await database.fetch(
        f"SELECT partition, next_offset, halted_reason,"
        f" extract(epoch FROM now() - heartbeat_at) AS heartbeat_age,"
        f" extract(epoch FROM now() - coalesce(advanced_at, updated_at)) AS progress_age"
        f" FROM {quote_schema(watch.schema)}.checkpoints WHERE consumer = $1 AND topic = $2",
        watch.consumer,
        watch.topic,
    )
    by_partition = {row["partition"]: row for row in rows}
    ends = await lag.end_offsets(watch.topic)
    live = any(row["heartbeat_age"] is not None for row in rows)
    partitions: dict[str, Any] = {}
    problems: list[str] = []
    for partition, end in sorted(ends.items()):
        row = by_partition.get(partition)
        state = _partition_state(row, end)
        partitions[str(partition)] = state
        where = f"{watch.consumer} {watch.topic}[{partition}]"
        if not live:
            continue
        if not state["owned"]:
            problems.append(f"{where} has no live owner")
        if state["halted"] is not None:
            problems.append(f"{where} is halted: {state['halted']}")
        if state["stalled"]:
            problems.append(f"{where} lags by {state['lag']} records without progress")
    total = sum(state["lag"] for state in partitions.values())
    lag.record(watch.consumer, total)
    report = {"running": live, "lag": total, "partitions": partitions}
    return report, problems


def _partition_state(row: asyncpg.Record | None, end: int) -> dict[str, Any]:
    if row is None:
        return {"lag": end, "claimed": False, "owned": False, "halted": None, "stalled": end > 0}
    lag = max(0, end - row["next_offset"])
    heartbeat_age = row["heartbeat_age"]
    progress_age = row["progress_age"]
    owned = heartbeat_age is not None and float(heartbeat_age) <= OWNER_HEARTBEAT_STALE_SECONDS
    stalled = lag > 0 and progress_age is not None and float(progress_age) > PROGRESS_STALL_SECONDS
    return {"lag": lag, "claimed": True, "owned": owned, "halted": row["halted_reason"],
            "stalled": stalled}  # fmt: skip


async def consumers_check(
    pool: asyncpg.Pool, lag: LagReader, watches: Sequence[ConsumerWatch]
) -> dict[str, Any]:
    """A readiness check: the report of every group, raising when any partition is not well."""
    report: dict[str, Any] = {}
    problems: list[str] = []
    for watch in watches:
        report[watch.consumer], found = await consumer_report(pool, lag, watch)
        problems += found
    if problems:
        raise ConsumersNotReadyError("; ".join(problems))
    return report
