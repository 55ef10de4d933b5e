"""The gateway application: FastAPI with every service's routes and the ops routes."""

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker
from faststream.specification.asyncapi import get_asyncapi_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from services.gateway.middleware import RequestContextMiddleware
from services.ledger.domain.catalog import Catalogs
from services.ledger.entrypoints import routes as ledger_routes
from shared.contracts.asyncapi import build_asyncapi
from shared.contracts.ledger import LEDGER_COMMANDS, LEDGER_EVENTS
from shared.http.auth import Credentials
from shared.http.errors import install_error_handlers
from shared.kafka.command_publisher import BrokerCommandPublisher
from shared.kafka.lag import LagReader
from shared.observability.health import Readiness, health_routes
from shared.postgres.notify import NotificationHub
from shared.postgres.pool import create_pool
from shared.redis_client import create_redis
from shared.settings import PlatformSettings

VERSION = "0.1.0"
GATEWAY_POOL_MAX_CONNECTIONS = 20
PROCESS_NAME = "gateway"


def create_app(settings: PlatformSettings) -> FastAPI:
    app = FastAPI(
        title="Ledgerbus",
        version=VERSION,
        description="Credit ledger, wallet, health tracking and analytics over an event log.",
        lifespan=_lifespan(settings, ledger_routes.load_ledger_catalogs()),
    )
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    _add_routes(app, ledger_routes.router)
    app.router.routes.extend(health_routes(Readiness(_checks(app, settings), PROCESS_NAME)))
    _add_asyncapi_routes(app, settings)
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put a service's routes on the app itself.

    `include_router` wraps every request in an extra matching layer (FastAPI 0.165), about 7%
    of a cached read's time in `make bench`; these routers use no prefix or router-level
    dependencies, so their routes can join the app's list unchanged.
    """
    assert not router.prefix, "a prefixed router needs include_router"
    assert not router.dependencies, "a router with dependencies needs include_router"
    app.router.routes.extend(router.routes)


def _lifespan(settings: PlatformSettings, catalogs: Catalogs):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            pool = await create_pool(
                settings.postgres_dsn,
                max_size=GATEWAY_POOL_MAX_CONNECTIONS,
                application_name=PROCESS_NAME,
            )
            stack.push_async_callback(pool.close)
            broker = KafkaBroker(
                settings.kafka_bootstrap_servers,
                client_id=PROCESS_NAME,
                acks="all",
                logger=logging.getLogger("faststream.gateway"),
            )
            await broker.start()
            stack.push_async_callback(broker.stop)
            lag = LagReader(settings.kafka_bootstrap_servers, client_id=f"{PROCESS_NAME}-lag")
            await lag.start()
            stack.push_async_callback(lag.stop)
            hub = NotificationHub(settings.postgres_dsn, application_name=f"{PROCESS_NAME}-listen")
            events_partitions = len(await lag.end_offsets(settings.topic("ledger.events")))
            app.state.ledger = ledger_routes.open_ledger_http(
                settings, catalogs, pool, hub, BrokerCommandPublisher(broker), events_partitions
            )
            await hub.start()
            stack.push_async_callback(hub.stop)
            redis = create_redis(settings.redis_url)
            stack.push_async_callback(redis.aclose)
            app.state.credentials = Credentials(settings.app_keys, settings.admin_token)
            app.state.pool, app.state.broker, app.state.redis, app.state.lag = (
                pool, broker, redis, lag,
            )  # fmt: skip
            yield

    return lifespan


def _checks(app: FastAPI, settings: PlatformSettings):  # type: ignore[no-untyped-def]
    async def postgres() -> None:
        await app.state.pool.fetchval("SELECT 1")

    async def kafka() -> None:
        if not await app.state.broker.ping(timeout=1.5):
            raise ConnectionError("the broker did not answer")

    async def redis() -> None:
        await app.state.redis.ping()

    async def ledger_lag() -> dict[str, object]:
        return await ledger_routes.ledger_lag(settings, app.state.pool, app.state.lag)

    return {"postgres": postgres, "kafka": kafka, "redis": redis, "ledger_lag": ledger_lag}


def _add_asyncapi_routes(app: FastAPI, settings: PlatformSettings) -> None:
    specification = build_asyncapi(
        [("ledger.commands", LEDGER_COMMANDS), ("ledger.events", LEDGER_EVENTS)], VERSION
    )

    async def asyncapi_json(_: Request) -> Response:
        return Response(specification.to_json(), media_type="application/json")

    async def asyncapi_html(_: Request) -> Response:
        return HTMLResponse(get_asyncapi_html(specification))

    app.add_route("/asyncapi.json", asyncapi_json, include_in_schema=False)
    app.add_route("/asyncapi", asyncapi_html, include_in_schema=False)
