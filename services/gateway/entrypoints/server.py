"""Process entry: `ledgerbus run gateway` serves the API with uvicorn."""

import uvicorn

from services.gateway.app import create_app
from shared.logs import configure_logging
from shared.settings import load_settings

KEEPALIVE_TIMEOUT_SECONDS = 30
GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS = 15


def main() -> int:
    settings = load_settings()
    configure_logging(settings, "gateway")
    app = create_app(settings)
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
