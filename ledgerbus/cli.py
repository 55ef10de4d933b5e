"""`ledgerbus`: the one command for operators, developers and containers."""

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ledgerbus.registry import processes
from shared.kafka.topics import TOPIC_DEFINITIONS_PATH

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
projections_app = typer.Typer(no_args_is_help=True, help="Read-model maintenance.")
app.add_typer(projections_app, name="projections")
analytics_app = typer.Typer(no_args_is_help=True, help="The Redis analytics aggregates.")
app.add_typer(analytics_app, name="analytics")


@app.command()
def run(process: Annotated[str, typer.Argument(help="A process name, e.g. gateway.")]) -> None:
    """Run one Ledgerbus process in the foreground (what each container does)."""
    known = processes()
    info = known.get(process)
    if info is None:
        raise typer.BadParameter(f"unknown process {process!r}; choose from {', '.join(known)}")
    raise typer.Exit(info.load()())


@app.command("migrate")
def migrate_command() -> None:
    """Apply every service's PostgreSQL migrations (idempotent)."""
    from ledgerbus.operations import migrate_all
    from shared.settings import load_settings

    settings = load_settings()
    applied = asyncio.run(migrate_all(settings.postgres_dsn))
    typer.echo("\n".join(f"applied {name}" for name in applied) or "schema up to date")


topics_app = typer.Typer(no_args_is_help=True, help="Kafka topics.")
app.add_typer(topics_app, name="topics")


@topics_app.command("create")
def create_topics_command(
    definitions: Annotated[
        Path, typer.Option(help="Topic definitions file.")
    ] = TOPIC_DEFINITIONS_PATH,
) -> None:
    """Create the topics of the definitions file that do not exist yet."""
    from ledgerbus.operations import create_all_topics
    from shared.settings import load_settings

    settings = load_settings()
    created = asyncio.run(
        create_all_topics(
            settings.kafka_bootstrap_servers, settings.ledgerbus_topic_prefix, definitions
        )
    )
    typer.echo("\n".join(f"created {name}" for name in created) or "all topics exist")


@app.command()
def dev() -> None:
    """Start the embedded infrastructure (where the environment names none) and every process."""
    from ledgerbus.dev import main as dev_main

    raise typer.Exit(dev_main())


@app.command()
def audit(
    service: Annotated[
        str, typer.Option(help="ledger, wallet, tracking, analytics or all")
    ] = "all",
    until: Annotated[
        datetime | None, typer.Option(help="RFC 3339 time: replay only events up to it")
    ] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """Replay the log into a scratch schema and compare it with the live read models.

    Exit 0 when everything matches, 1 on any difference (each is named), 2 when it cannot run.
    """
    from ledgerbus.audit import run_audit

    if until is not None and until.tzinfo is None:
        raise typer.BadParameter("--until needs a UTC offset, for example 2026-01-31T12:00:00Z")
    raise typer.Exit(run_audit(service, until, json_file))


@projections_app.command("rebuild")
def rebuild(
    service: Annotated[str, typer.Argument(help="ledger, wallet, tracking or analytics")],
) -> None:
    """Rebuild a live read model from offset 0 and swap it in without stopping anything."""
    from ledgerbus.audit import run_rebuild

    raise typer.Exit(run_rebuild(service))


@analytics_app.command("rebuild")
def analytics_rebuild() -> None:
    """Rebuild the analytics aggregates from offset 0 into a new generation; the live one keeps
    answering until the new one has caught up with the log and replaces it."""
    from ledgerbus.audit import run_rebuild

    raise typer.Exit(run_rebuild("analytics"))


def main() -> int:
    app()
    return 0
