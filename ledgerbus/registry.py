"""Every service and process, found from the services' descriptors.

Each `services/<name>/service.py` defines `SERVICE` (a `ServiceDescriptor`); a folder without
one (a service still being planned) is skipped. The gateway is the one platform process.
"""

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.engine.service import ProcessDescriptor, ServiceDescriptor, load

SERVICES_ROOT = Path(__file__).resolve().parents[1] / "services"
GATEWAY_PROCESS = "gateway"


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    name: str
    entry: str

    def load(self) -> Callable[[], int]:
        main = load(self.entry)
        assert callable(main), f"{self.entry} is not callable"
        return main  # type: ignore[no-any-return]


@functools.cache
def services() -> tuple[ServiceDescriptor, ...]:
    found = []
    for folder in sorted(SERVICES_ROOT.iterdir()):
        if not (folder / "service.py").is_file():
            continue
        module = importlib.import_module(f"services.{folder.name}.service")
        descriptor = module.SERVICE
        assert isinstance(descriptor, ServiceDescriptor), f"{folder}: SERVICE is no descriptor"
        assert descriptor.name == folder.name, f"{folder}: the service is named {descriptor.name}"
        found.append(descriptor)
    return tuple(found)


def service_processes() -> tuple[ProcessDescriptor, ...]:
    return tuple(process for service in services() for process in service.processes)


def processes() -> dict[str, ProcessInfo]:
    """Every process `ledgerbus run` knows: each service's, and the gateway."""
    known = {p.name: ProcessInfo(p.name, p.entry) for p in service_processes()}
    known[GATEWAY_PROCESS] = ProcessInfo(
        GATEWAY_PROCESS, "services.gateway.entrypoints.server:main"
    )
    return known


def service(name: str) -> ServiceDescriptor | None:
    return next((item for item in services() if item.name == name), None)
