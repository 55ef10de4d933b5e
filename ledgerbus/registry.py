"""Every service's processes, schemas and migrations, in one place.

Adding a service means adding its `ServiceInfo` here (see AGENTS.md). Entry points are import
strings so `ledgerbus --help` does not import every service.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SERVICES_ROOT = Path(__file__).resolve().parents[1] / "services"


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    schema: str
    processes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    name: str
    entry: str
    """`module:function` returning an exit code."""

    def load(self) -> Callable[[], int]:
        module_name, _, function_name = self.entry.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        assert callable(function)
        return function  # type: ignore[no-any-return]


SERVICES = (ServiceInfo("ledger", "ledger", ("ledger-processor", "ledger-projector")),)
# Later services (wallet, tracking, analytics) add their ServiceInfo and processes here.

PROCESSES = {
    info.name: info
    for info in (
        ProcessInfo("ledger-processor", "services.ledger.entrypoints.processor:main"),
        ProcessInfo("ledger-projector", "services.ledger.entrypoints.projector:main"),
        ProcessInfo("gateway", "services.gateway.entrypoints.server:main"),
    )
}


def migrations_folder(service: ServiceInfo) -> Path:
    return SERVICES_ROOT / service.name / "migrations"
