"""The credit ledger, as the platform sees it (see shared/engine/service.py)."""

from pathlib import Path

from shared.engine.service import (
    HttpDescriptor,
    ProcessDescriptor,
    ProcessRole,
    ServiceDescriptor,
    TopicDescriptor,
)

SERVICE = ServiceDescriptor(
    name="ledger",
    schema="ledger",
    migrations=Path(__file__).with_name("migrations"),
    processes=(
        ProcessDescriptor(
            "ledger-processor",
            "services.ledger.entrypoints.processor:main",
            ProcessRole.PROCESSOR,
            consumes=("ledger.commands",),
        ),
        ProcessDescriptor(
            "ledger-projector",
            "services.ledger.entrypoints.projector:main",
            ProcessRole.PROJECTOR,
            consumes=("ledger.events",),
        ),
    ),
    topics=(
        TopicDescriptor("ledger.commands", "shared.contracts.ledger:LEDGER_COMMANDS"),
        TopicDescriptor("ledger.events", "shared.contracts.ledger:LEDGER_EVENTS"),
    ),
    http=HttpDescriptor(
        router="services.ledger.entrypoints.http.endpoints:router",
        configure="services.ledger.entrypoints.http.dependencies:configure",
    ),
    audit="services.ledger.projections.audit:run_audit",
    rebuild="services.ledger.projections.rebuild:run_rebuild",
)
