"""What an audit reports, and the row-by-row comparison every service's audit uses.

An audit replays a service's topics into a scratch schema and compares the result with the live
read models read in one snapshot, at the positions that snapshot had reached.
"""

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

DIFFERENCES_KEPT_MAX = 200
"""Differences listed in a report; the count covers them all."""
CURSOR_PREFETCH_ROWS = 5_000


@dataclass(slots=True)
class AuditReport:
    service: str
    positions: dict[int, int] = field(default_factory=dict)
    events_applied: int = 0
    rows_compared: int = 0
    differences: list[str] = field(default_factory=list)
    difference_count: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    consumers: dict[str, Any] = field(default_factory=dict)
    """Per consumer and partition: lag, ownership, halts (as readiness reports them)."""

    @property
    def matches(self) -> bool:
        return self.difference_count == 0 and not self.violations

    def add_difference(self, text: str) -> None:
        self.difference_count += 1
        if len(self.differences) < DIFFERENCES_KEPT_MAX:
            self.differences.append(text)

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "status": "match" if self.matches else "differences",
            "positions": {str(partition): offset for partition, offset in self.positions.items()},
            "events_applied": self.events_applied,
            "rows_compared": self.rows_compared,
            "difference_count": self.difference_count,
            "differences": self.differences,
            "violations": self.violations,
            "notes": self.notes,
            "consumers": self.consumers,
        }


@dataclass(frozen=True, slots=True)
class TableComparison:
    """One table compared by key: both queries must return key columns first, sorted alike."""

    label: str
    live_query: str
    scratch_query: str
    key_columns: int
    describe_key: Callable[[tuple[Any, ...]], str]


async def compare_sorted(
    report: AuditReport,
    comparison: TableComparison,
    live: asyncpg.Connection,
    scratch: asyncpg.Connection,
    live_arguments: Sequence[Any] = (),
) -> None:
    """Merge two sorted row streams and record every row that differs or exists on one side."""
    live_rows = _rows(live, comparison.live_query, live_arguments)
    scratch_rows = _rows(scratch, comparison.scratch_query, ())
    left = await anext(live_rows, None)
    right = await anext(scratch_rows, None)
    width = comparison.key_columns
    while left is not None or right is not None:
        report.rows_compared += 1
        if right is None or (left is not None and left[:width] < right[:width]):
            assert left is not None
            report.add_difference(
                f"{comparison.label} {comparison.describe_key(left)}: in the live read model,"
                f" not in the replay ({_values(left, width)})"
            )
            left = await anext(live_rows, None)
        elif left is None or right[:width] < left[:width]:
            report.add_difference(
                f"{comparison.label} {comparison.describe_key(right)}: in the replay, missing"
                f" from the live read model ({_values(right, width)})"
            )
            right = await anext(scratch_rows, None)
        else:
            if left != right:
                report.add_difference(
                    f"{comparison.label} {comparison.describe_key(left)}: live"
                    f" {_values(left, width)} but the log says {_values(right, width)}"
                )
            left = await anext(live_rows, None)
            right = await anext(scratch_rows, None)


async def _rows(
    connection: asyncpg.Connection, query: str, arguments: Sequence[Any]
) -> AsyncIterator[tuple[Any, ...]]:
    async for record in connection.cursor(query, *arguments, prefetch=CURSOR_PREFETCH_ROWS):
        yield tuple(
            str(value) if type(value).__name__ == "UUID" else value for value in record.values()
        )


def _values(row: tuple[Any, ...], width: int) -> str:
    return ", ".join(repr(value) for value in row[width:])
