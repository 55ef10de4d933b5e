"""Analytics, as the platform sees it (see shared/engine/service.py).

It keeps nothing in PostgreSQL: its aggregates and their checkpoints live in Redis (ADR 0017).
"""

from shared.engine.service import HttpDescriptor, ProcessDescriptor, ProcessRole, ServiceDescriptor

SERVICE = ServiceDescriptor(
    name="analytics",
    schema=None,
    migrations=None,
    processes=(
        ProcessDescriptor(
            "analytics-aggregator",
            "services.analytics.entrypoints.aggregator:main",
            ProcessRole.AGGREGATOR,
            consumes=("wallet.events", "ledger.events", "tracking.events"),
        ),
    ),
    topics=(),
    http=HttpDescriptor(
        router="services.analytics.entrypoints.http.endpoints:router",
        configure="services.analytics.entrypoints.http.dependencies:configure",
    ),
    audit="services.analytics.projections.audit:run_audit",
    rebuild="services.analytics.projections.rebuild:run_rebuild",
    readiness="services.analytics.entrypoints.http.dependencies:aggregates_ready",
)
