"""Process entry: `ledgerbus run gateway` serves the API with uvicorn."""

import sys

import uvicorn

from services.gateway.app import create_app
from shared.logs import configure_logging
from shared.settings import ConfigurationError, load_settings
from shared.worker import EXIT_CONFIGURATION

KEEPALIVE_TIMEOUT_SECONDS = 30
GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS = 15


def main() -> int:
    try:
        settings = load_settings()
        configure_logging(settings, "gateway")
        app = create_app(settings)
    except ConfigurationError as error:
        print(f"gateway refuses to start: {error}", file=sys.stderr, flush=True)
        return EXIT_CONFIGURATION
    uvicorn.run(
        app,
        host=settings.ledgerbus_http_host,
        port=settings.ledgerbus_http_port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=KEEPALIVE_TIMEOUT_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS,
    )
    return 0
