"""How every consumer group stands, per partition: ownership, halts, lag and progress.

Read from the checkpoints and the owners' heartbeats (PostgreSQL) and the true end of each log
(Kafka). The end is read before the checkpoints, so a record appended meanwhile is never
counted as lag. A partition is
- unowned when its owner's heartbeat is older than four heartbeat intervals (the owner died
  and its group has not handed the partition to another member yet),
- halted when its owner stopped it rather than step over a record (the reason is stored),
- stalled when it has lagged with the same checkpoint for a while, as this reader saw it
  (`ProgressMemory`): a quiet partition that just received a record is not stalled.
A group that never ran (no heartbeat, or all released by a clean stop) does not count against
readiness for ownership or progress; a halt always does.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.kafka.lag import LagReader
from shared.postgres.migrations import quote_schema

OWNER_HEARTBEAT_STALE_SECONDS = 2.0
"""Four owner heartbeats missed: the owner is dead or frozen (heartbeats run in a task of
their own, so a long batch does not delay them)."""
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


@dataclass(slots=True)
class ProgressMemory:
    """What one reader saw of each lagging partition: its checkpoint, and since when."""

    seen: dict[tuple[str, str, int], tuple[int, float]] = field(default_factory=dict)

    def stalled(self, key: tuple[str, str, int], next_offset: int, lag: int) -> bool:
        now = time.monotonic()
        if lag == 0:
            self.seen.pop(key, None)
            return False
        known = self.seen.get(key)
        if known is None or known[0] != next_offset:
            self.seen[key] = (next_offset, now)
            return False
        return now - known[1] > PROGRESS_STALL_SECONDS


async def partition_rows(
    database: asyncpg.Pool | asyncpg.Connection, watch: ConsumerWatch
) -> dict[int, asyncpg.Record]:
    """Each partition's checkpoint, halt and owner heartbeat age (seconds, or None)."""
    schema = quote_schema(watch.schema)
    rows = await database.fetch(
        f"SELECT c.partition, c.next_offset, c.halted_reason,"
        f" extract(epoch FROM now() - o.heartbeat_at) AS heartbeat_age"
        f" FROM {schema}.checkpoints c LEFT JOIN {schema}.partition_owners o"
        " ON o.consumer = c.consumer AND o.topic = c.topic AND o.partition = c.partition"
        " WHERE c.consumer = $1 AND c.topic = $2",
        watch.consumer,
        watch.topic,
    )
    return {row["partition"]: row for row in rows}


def partition_state(row: asyncpg.Record | None, end: int) -> dict[str, Any]:
    if row is None:
        return {"lag": end, "claimed": False, "owned": False, "halted": None}
    age = row["heartbeat_age"]
    return {
        "lag": max(0, end - row["next_offset"]),
        "claimed": True,
        "owned": age is not None and float(age) <= OWNER_HEARTBEAT_STALE_SECONDS,
        "halted": row["halted_reason"],
    }


async def consumer_report(
    database: asyncpg.Pool | asyncpg.Connection,
    lag: LagReader,
    watch: ConsumerWatch,
    memory: ProgressMemory,
    ends: Mapping[int, int] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The group's per-partition state and the problems that make it not ready."""
    if ends is None:
        ends = await lag.end_offsets(watch.topic)
    rows = await partition_rows(database, watch)
    live = any(row["heartbeat_age"] is not None for row in rows.values())
    partitions: dict[str, Any] = {}
    problems: list[str] = []
    for partition, end in sorted(ends.items()):
        row = rows.get(partition)
        state = partition_state(row, end)
        key = (watch.consumer, watch.topic, partition)
        state["stalled"] = memory.stalled(key, row["next_offset"] if row else 0, state["lag"])
        partitions[str(partition)] = state
        where = f"{watch.consumer} {watch.topic}[{partition}]"
        if state["halted"] is not None:
            problems.append(f"{where} is halted: {state['halted']}")
        if live and not state["owned"]:
            problems.append(f"{where} has no live owner")
        if live and state["stalled"]:
            problems.append(f"{where} lags by {state['lag']} records without progress")
    total = sum(state["lag"] for state in partitions.values())
    lag.record(watch.consumer, total)
    return {"running": live, "lag": total, "partitions": partitions}, problems


def report_names(watches: Sequence[ConsumerWatch]) -> list[str]:
    """The name each watch is reported under: its consumer's, or, for a consumer that reads
    several topics (a processor reacting to events), the consumer and the topic, so that no
    topic's partitions hide another's."""
    counts: dict[str, int] = {}
    for watch in watches:
        counts[watch.consumer] = counts.get(watch.consumer, 0) + 1
    return [
        watch.consumer if counts[watch.consumer] == 1 else f"{watch.consumer} {watch.topic}"
        for watch in watches
    ]


async def consumers_check(
    pool: asyncpg.Pool,
    lag: LagReader,
    watches: Sequence[ConsumerWatch],
    memory: ProgressMemory,
) -> dict[str, Any]:
    """A readiness check: the report of every group, raising when any partition is not well."""
    report: dict[str, Any] = {}
    problems: list[str] = []
    for name, watch in zip(report_names(watches), watches, strict=True):
        report[name], found = await consumer_report(pool, lag, watch, memory)
        problems += found
    if problems:
        raise ConsumersNotReadyError("; ".join(problems))
    return report
