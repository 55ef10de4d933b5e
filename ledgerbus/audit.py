"""`ledgerbus audit` and `ledgerbus projections rebuild`: progress bars, summary, exit codes."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from shared.audit import AuditReport
from shared.settings import PlatformSettings, load_settings

EXIT_MATCH = 0
EXIT_DIFFERENCES = 1
EXIT_COULD_NOT_RUN = 2
AUDITABLE_SERVICES = ("ledger",)
PLANNED_SERVICES = ("wallet", "tracking")

console = Console(stderr=True)
T = TypeVar("T")


def run_audit(service: str, until: datetime | None, json_file: Path | None) -> int:
    if service in PLANNED_SERVICES:
        console.print(f"[red]the {service} service is not built yet; nothing to audit[/red]")
        return EXIT_COULD_NOT_RUN
    services = AUDITABLE_SERVICES if service == "all" else (service,)
    settings = load_settings()
    reports: list[AuditReport] = []
    try:
        for name in services:
            reports.append(asyncio.run(_audit_one(name, settings, until)))
    except Exception as error:
        console.print(f"[red]audit could not run: {type(error).__name__}: {error}[/red]")
        return EXIT_COULD_NOT_RUN
    for report in reports:
        _print_report(report)
    if json_file is not None:
        json_file.write_text(json.dumps([report.as_json() for report in reports], indent=2))
    return EXIT_MATCH if all(report.matches for report in reports) else EXIT_DIFFERENCES


async def _audit_one(
    service: str, settings: PlatformSettings, until: datetime | None
) -> AuditReport:
    from services.ledger.projections.audit import audit_ledger

    assert service == "ledger", "only the ledger is auditable so far"
    return await _with_progress(
        f"replaying {service}",
        lambda on_total, on_progress: audit_ledger(
            settings.postgres_dsn,
            settings.kafka_bootstrap_servers,
            topic_prefix=settings.ledgerbus_topic_prefix,
            until=until,
            on_total=on_total,
            on_progress=on_progress,
        ),
    )


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
    console.print(table)
    for line in report.differences:
        console.print(f"  [red]difference[/red] {line}")
    for line in report.violations:
        console.print(f"  [red]violation[/red]  {line}")
    for line in report.notes:
        console.print(f"  note       {line}")


def run_rebuild(service: str) -> int:
    if service != "ledger":
        console.print(f"[red]no read model to rebuild for {service!r} yet[/red]")
        return EXIT_COULD_NOT_RUN
    from services.ledger.projections.rebuild import rebuild_ledger

    settings = load_settings()
    try:
        result = asyncio.run(
            _with_progress(
                "rebuilding ledger",
                lambda on_total, on_progress: rebuild_ledger(
                    settings.postgres_dsn,
                    settings.kafka_bootstrap_servers,
                    topic_prefix=settings.ledgerbus_topic_prefix,
                    on_total=on_total,
                    on_progress=on_progress,
                ),
            )
        )
    except Exception as error:
        console.print(f"[red]rebuild failed, live read model untouched: {error}[/red]")
        return EXIT_COULD_NOT_RUN
    rate = result.events_applied / result.seconds if result.seconds else 0.0
    console.print(
        f"rebuilt ledger: {result.events_applied} events, {result.entries} entries,"
        f" {result.balances} balances in {result.seconds:.2f} s ({rate:,.0f} events/s); swapped in"
    )
    return EXIT_MATCH
