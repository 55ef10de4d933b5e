"""Health tracking, as the platform sees it (see shared/engine/service.py)."""

from pathlib import Path

from shared.engine.service import (
    HttpDescriptor,
    ProcessDescriptor,
    ProcessRole,
    ServiceDescriptor,
    TopicDescriptor,
)

SERVICE = ServiceDescriptor(
    name="tracking",
    schema="tracking",
    migrations=Path(__file__).with_name("migrations"),
    processes=(
        ProcessDescriptor(
            "tracking-processor",
            "services.tracking.entrypoints.processor:main",
            ProcessRole.PROCESSOR,
            consumes=("tracking.commands", "tracking.events"),
        ),
        ProcessDescriptor(
            "tracking-projector",
            "services.tracking.entrypoints.projector:main",
            ProcessRole.PROJECTOR,
            consumes=("tracking.events",),
        ),
    ),
    topics=(
        TopicDescriptor("tracking.commands", "shared.contracts.tracking:TRACKING_COMMANDS"),
        TopicDescriptor("tracking.events", "shared.contracts.tracking:TRACKING_EVENTS"),
    ),
    http=HttpDescriptor(
        router="services.tracking.entrypoints.http.endpoints:router",
        configure="services.tracking.entrypoints.http.dependencies:configure",
    ),
    audit="services.tracking.projections.audit:run_audit",
    rebuild="services.tracking.projections.rebuild:run_rebuild",
)
