"""Positions: where a write's events stand in a topic, as `partition:offset[,partition:offset]`.

A read model has reached a position when, for every partition named, its checkpoint (the next
offset it will apply) is past the offset.
"""

from collections.abc import Mapping

POSITION_MAX_PARTS = 16


class PositionError(ValueError):
    pass


def format_position(partition: int, offset: int) -> str:
    return f"{partition}:{offset}"


def parse_position(text: str) -> dict[int, int]:
    """Parse `2:1041` or `2:1041,3:77` into partition to offset."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts or len(parts) > POSITION_MAX_PARTS:
        raise PositionError(f"{text!r} is not a position like 2:1041")
    positions: dict[int, int] = {}
    for part in parts:
        partition, separator, offset = part.strip().partition(":")
        if not separator or not partition.isdigit() or not offset.isdigit():
            raise PositionError(f"{text!r} is not a position like 2:1041")
        positions[int(partition)] = max(int(offset), positions.get(int(partition), 0))
    return positions


def reached(checkpoints: Mapping[int, int], wanted: Mapping[int, int]) -> bool:
    """True when each wanted partition's next offset is beyond the wanted offset."""
    return all(checkpoints.get(partition, 0) > offset for partition, offset in wanted.items())


def never_written(
    wanted: Mapping[int, int], ends: Mapping[int, int], known: Mapping[int, int]
) -> list[int]:
    """Partitions whose wanted offset lies at or past the end of the log.

    A partition the end probe did not report is not judged (metadata can lag a moment behind a
    broker or group change), and an end is never taken below a checkpoint already seen there:
    a false "never written" would refuse a position a write really answered.
    """
    return sorted(
        partition
        for partition, offset in wanted.items()
        if partition in ends and offset >= max(ends[partition], known.get(partition, 0))
    )
