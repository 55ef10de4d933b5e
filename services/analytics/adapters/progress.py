"""How far the analytics aggregates stand behind the log, for `/ready` on the aggregator and
the gateway: the generation answering (or being rebuilt) and each topic's lag, read from the
checkpoints in Redis against the true log ends. The log end is read first, so a record appended
meanwhile never counts as lag. A partition lagging with the same checkpoint for a while is
stalled, and makes the check fail; a rebuild under way, or no aggregator ever run, does not.
"""

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from shared.kafka.lag import LagReader
from shared.observability.consumers import ProgressMemory

STALLED_CONSUMER = "analytics-aggregator"


class AggregatesStalledError(RuntimeError):
    """Some partition lags and its checkpoint has not moved; the message names each."""


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


async def aggregates_progress(
    redis: Redis, prefix: str, lag: LagReader, topics: Sequence[str], memory: ProgressMemory,
) -> dict[str, Any]:  # fmt: skip
    """`topics` as the broker names them (with any prefix), as the checkpoints name them."""
    ends = {name: await lag.end_offsets(name) for name in topics}
    live = _text(await redis.get(f"{prefix}generation"))
    building = _text(await redis.get(f"{prefix}building"))
    writing = live or building  # the live aggregator's progress; a rebuild command shows its own
    report: dict[str, Any] = {"answering": live is not None, "rebuilding": building is not None}
    if writing is None:
        report["note"] = "no aggregator has run against this log yet"
        return report
    stalled, lags = [], {}
    for name in topics:
        partitions = sorted(ends[name])
        keys = [f"{prefix}{writing}:checkpoint:{name}:{p}" for p in partitions]
        values = await redis.mget(keys) if keys else []
        total = 0
        for partition, value in zip(partitions, values, strict=True):
            next_offset = int(_text(value) or 0)
            behind = max(ends[name][partition] - next_offset, 0)
            total += behind
            if memory.stalled((STALLED_CONSUMER, name, partition), next_offset, behind):
                stalled.append(f"{name}[{partition}] stalled {behind} behind")
        lags[name] = total
    report["lag"] = lags
    if stalled:
        raise AggregatesStalledError("; ".join(stalled))
    return report
