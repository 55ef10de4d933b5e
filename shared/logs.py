"""Structured logs with correlation ids.

Every log line carries the process name and, while a request or command is handled, its
correlation id (the gateway's middleware binds it). Dev prints readable lines; production prints
one JSON object per line for the log pipeline.
"""

import logging
import sys
from typing import Any

import structlog

from shared.settings import PlatformSettings


def configure_logging(settings: PlatformSettings, process_name: str) -> None:
    """Route stdlib and structlog records through one renderer; call once per process."""
    renderer: Any
    if settings.ledgerbus_log_format == "json" or settings.is_production:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stdout.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.ledgerbus_log_level.upper())
    # aiokafka logs every rebalance step at INFO; warnings are what an operator needs.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # FastStream logs every batch it receives and processes at INFO: far too much on a hot path.
    logging.getLogger("faststream").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(process=process_name)


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
