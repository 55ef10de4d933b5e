"""The wallet, as the platform sees it (see shared/engine/service.py and ADR 0021)."""

from pathlib import Path

from shared.engine.service import (
    HttpDescriptor,
    ProcessDescriptor,
    ProcessRole,
    ServiceDescriptor,
    TopicDescriptor,
)

SERVICE = ServiceDescriptor(
    name="wallet",
    schema="wallet",
    migrations=Path(__file__).with_name("migrations"),
    processes=(
        ProcessDescriptor(
            "wallet-processor",
            "services.wallet.entrypoints.processor:main",
            ProcessRole.PROCESSOR,
            consumes=("wallet.commands",),
        ),
        ProcessDescriptor(
            "wallet-projector",
            "services.wallet.entrypoints.projector:main",
            ProcessRole.PROJECTOR,
            consumes=("wallet.events",),
        ),
    ),
    topics=(
        TopicDescriptor("wallet.commands", "shared.contracts.wallet:WALLET_COMMANDS"),
        TopicDescriptor("wallet.events", "shared.contracts.wallet:WALLET_EVENTS"),
    ),
    http=HttpDescriptor(
        router="services.wallet.entrypoints.http.endpoints:router",
        configure="services.wallet.entrypoints.http.dependencies:configure",
    ),
    audit="services.wallet.projections.audit:run_audit",
    rebuild="services.wallet.projections.rebuild:run_rebuild",
)
