"""One descriptor per service: everything the platform needs to run, serve and audit it.

`services/<name>/service.py` defines `SERVICE`. The registry (`ledgerbus/registry.py`) finds
every descriptor, and the stack, the gateway, the audit and rebuild commands, readiness and the
AsyncAPI document loop over them, so adding a service touches no platform file. Entry points
are import strings (`module:attribute`): reading a descriptor imports nothing heavy.
"""

import importlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class ProcessRole(StrEnum):
    PROCESSOR = "processor"
    """Decides commands (and reacts to events) on a partition owner."""
    PROJECTOR = "projector"
    """Folds events into read models on a partition owner."""
    AGGREGATOR = "aggregator"
    """Folds events into Redis aggregates; its checkpoints live in Redis beside them (ADR 0017),
    so PostgreSQL readiness watches and the audit's lag tables do not apply to it."""

    @property
    def checkpoints_in_postgres(self) -> bool:
        return self is not ProcessRole.AGGREGATOR


def load(reference: str) -> Any:
    """Import `module:attribute` and return the attribute."""
    module_name, separator, attribute = reference.partition(":")
    assert separator, f"{reference!r} is not `module:attribute`"
    assert attribute, f"{reference!r} names no attribute"
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True, slots=True)
class ProcessDescriptor:
    name: str
    """The process name: `ledgerbus run <name>`, its container, its consumer group."""
    entry: str
    """`module:function` returning an exit code."""
    role: ProcessRole
    consumes: tuple[str, ...]
    """The topics it consumes (without prefix): readiness and the audit watch them."""


@dataclass(frozen=True, slots=True)
class TopicDescriptor:
    name: str
    registry: str
    """`module:attribute` of the topic's `MessageRegistry` (for AsyncAPI and the audit)."""


@dataclass(frozen=True, slots=True)
class HttpDescriptor:
    router: str
    """`module:attribute` of an `APIRouter` the gateway mounts (no prefix)."""
    configure: str
    """`module:function(settings) -> open`, called when the gateway is created (a bad
    configuration stops it there, naming the problem); `open(context)` is awaited at start and
    puts what the routes need on `context.app.state`."""


@dataclass(frozen=True, slots=True)
class ServiceDescriptor:
    name: str
    schema: str | None
    """Its PostgreSQL schema; None for a service that keeps nothing there (analytics)."""
    migrations: Path | None
    processes: tuple[ProcessDescriptor, ...]
    topics: tuple[TopicDescriptor, ...]
    http: HttpDescriptor | None = None
    audit: str | None = None
    """`module:function(settings, until, on_total, on_progress) -> AuditReport`."""
    rebuild: str | None = None
    """`module:function(settings, on_total, on_progress) -> RebuildResult`."""
    readiness: str | None = None
    """`module:function(app) -> details`, awaited by the gateway's `/ready` (raising means not
    ready), for progress the PostgreSQL consumer watch does not see (Redis checkpoints)."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [process.name for process in self.processes]
        assert len(names) == len(set(names)), f"{self.name}: process names repeat"
        projectors = [p for p in self.processes if p.role is ProcessRole.PROJECTOR]
        # The schema's applied events belong to its one projector, and a rebuild swaps them
        # whole: a second projector in one schema would need a table of its own (ADR 0015).
        assert len(projectors) <= 1, f"{self.name}: one projector per service schema"
        if self.schema is None:
            assert self.migrations is None, f"{self.name}: migrations need a schema"
            assert all(not p.role.checkpoints_in_postgres for p in self.processes), (
                f"{self.name}: a process with PostgreSQL checkpoints needs a schema"
            )
        else:
            assert self.migrations is not None, f"{self.name}: a schema needs its migrations"
            assert self.migrations.is_dir(), f"{self.name}: {self.migrations} is not a folder"
