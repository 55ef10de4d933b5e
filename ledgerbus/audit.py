"""`ledgerbus audit` and `ledgerbus projections rebuild`: progress bars, summary, exit codes.

Both loop over the services' descriptors: a service with an `audit` entry is auditable, one
with a `rebuild` entry can be rebuilt.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ledgerbus.registry import services
from shared.engine.audit_report import AuditReport
from shared.engine.service import load
from shared.settings import PlatformSettings, load_settings

EXIT_MATCH = 0
EXIT_DIFFERENCES = 1
EXIT_COULD_NOT_RUN = 2
ALL_SERVICES = "all"

console = Console(stderr=True)
T = TypeVar("T")


def run_audit(service: str, until: datetime | None, json_file: Path | None) -> int:
    auditable = {item.name: item.audit for item in services() if item.audit is not None}
    if service != ALL_SERVICES and service not in auditable:
        console.print(
            f"[red]{service!r} cannot be audited; choose from"
            f" {', '.join([*auditable, ALL_SERVICES])}[/red]"
        )
        return EXIT_COULD_NOT_RUN
    names = list(auditable) if service == ALL_SERVICES else [service]
    settings = load_settings()
    reports: list[AuditReport] = []
    try:
        for name in names:
            audit = load(auditable[name])
            reports.append(
                asyncio.run(_with_progress(f"replaying {name}", _bind(audit, settings, until)))
            )
    except Exception as error:
        console.print(f"[red]audit could not run: {type(error).__name__}: {error}[/red]")
        return EXIT_COULD_NOT_RUN
    for report in reports:
        _print_report(report)
    if json_file is not None:
        json_file.write_text(json.dumps([report.as_json() for report in reports], indent=2))
    return EXIT_MATCH if all(report.matches for report in reports) else EXIT_DIFFERENCES


def _bind(
    audit: Any, settings: PlatformSettings, until: datetime | None
) -> Callable[[Callable[[int], None], Callable[[int], None]], Awaitable[AuditReport]]:
    def work(on_total: Callable[[int], None], on_progress: Callable[[int], None]) -> Any:
        return audit(settings, until, on_total, on_progress)

    return work


async def _with_progress(
    label: str,
    work: Callable[[Callable[[int], None], Callable[[int], None]], Awaitable[T]],
) -> T:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label, total=None)
        return await work(
            lambda total: progress.update(task, total=total),
            lambda count: progress.advance(task, count),
        )


def _print_report(report: AuditReport) -> None:
    status = "[green]MATCH[/green]" if report.matches else "[red]DIFFERENCES[/red]"
    table = Table(title=f"audit of {report.service}: {status}", show_header=False)
    table.add_row(
        "positions", ", ".join(f"{p}:{o}" for p, o in sorted(report.positions.items())) or "-"
    )
    table.add_row("events applied", str(report.events_applied))
    table.add_row("rows compared", str(report.rows_compared))
    table.add_row("differences", str(report.difference_count))
    table.add_row("invariant violations", str(len(report.violations)))
    for consumer, state in report.consumers.items():
        lags = ", ".join(f"{p}:{item['lag']}" for p, item in state["partitions"].items())
        table.add_row(f"lag of {consumer}", lags or "-")
    console.print(table)
    for line in report.differences:
        console.print(f"  [red]difference[/red] {line}")
    for line in report.violations:
        console.print(f"  [red]violation[/red]  {line}")
    for line in report.notes:
        console.print(f"  note       {line}")


def run_rebuild(service: str) -> int:
    rebuildable = {item.name: item.rebuild for item in services() if item.rebuild is not None}
    entry = rebuildable.get(service)
    if entry is None:
        console.print(
            f"[red]no read model to rebuild for {service!r}; choose from"
            f" {', '.join(rebuildable)}[/red]"
        )
        return EXIT_COULD_NOT_RUN
    settings = load_settings()
    rebuild = load(entry)
    try:
        result = asyncio.run(
            _with_progress(
                f"rebuilding {service}",
                lambda on_total, on_progress: rebuild(settings, on_total, on_progress),
            )
        )
    except Exception as error:
        console.print(f"[red]rebuild failed, live read model untouched: {error}[/red]")
        return EXIT_COULD_NOT_RUN
    rate = result.events_applied / result.seconds if result.seconds else 0.0
    rows = ", ".join(f"{count} {table}" for table, count in result.rows.items())
    console.print(
        f"rebuilt {service}: {result.events_applied} events ({rows}) in {result.seconds:.2f} s"
        f" ({rate:,.0f} events/s); swapped in"
    )
    return EXIT_MATCH
