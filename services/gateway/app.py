"""The gateway application: FastAPI with every service's routes and the ops routes.

Services are found from their descriptors (`ledgerbus.registry`): their routes are mounted,
their consumers watched by `/ready`, their topics documented in `/asyncapi`.
"""

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ledgerbus.registry import services
from services.gateway.json_keys import DuplicateMembersMiddleware
from services.gateway.limits import BodyLimitMiddleware
from services.gateway.middleware import RequestContextMiddleware, RequestShapeMiddleware
from services.gateway.openapi import document_errors
from shared.contracts.asyncapi import build_asyncapi_document, render_asyncapi_html
from shared.engine.service import load
from shared.http.auth import Credentials
from shared.http.errors import install_error_handlers
from shared.http.gateway_context import GatewayContext
from shared.http.user_tokens import UserTokens
from shared.kafka.command_publisher import BrokerCommandPublisher
from shared.kafka.lag import LagReader
from shared.observability.consumers import ConsumerWatch, ProgressMemory, consumers_check
from shared.observability.health import Check, Readiness, health_routes
from shared.postgres.notify import NotificationHub
from shared.postgres.pool import create_pool
from shared.redis_client import create_redis
from shared.settings import PlatformSettings

VERSION = "0.2.0"
GATEWAY_POOL_MAX_CONNECTIONS = 20
PROCESS_NAME = "gateway"
KAFKA_PING_TIMEOUT_SECONDS = 1.5

Opener = Callable[[GatewayContext], Awaitable[None]]


def create_app(settings: PlatformSettings) -> FastAPI:
    """Build the app; each service's `configure` runs now, so bad configuration stops it."""
    openers: list[Opener] = []
    for service in services():
        if service.http is not None:
            openers.append(load(service.http.configure)(settings))
    app = FastAPI(
        title="Ledgerbus",
        version=VERSION,
        description="Credit ledger, wallet, health tracking and analytics over an event log.",
        lifespan=_lifespan(settings, openers),
    )
    # `/ledger/alice/` is a JSON 404, not an empty 307 that clients with default settings
    # (httpx, fetch with redirect "manual") show as a blank answer.
    app.router.redirect_slashes = False
    install_error_handlers(app)
    app.add_middleware(DuplicateMembersMiddleware)
    app.add_middleware(RequestShapeMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    for service in services():
        if service.http is not None:
            _add_routes(app, load(service.http.router))
    app.router.routes.extend(health_routes(Readiness(_checks(app, settings), PROCESS_NAME)))
    _add_asyncapi_routes(app)
    document_errors(app)
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


def _lifespan(settings: PlatformSettings, openers: list[Opener]):  # type: ignore[no-untyped-def]
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
            redis = create_redis(settings.redis_url)
            stack.push_async_callback(redis.aclose)
            hub = NotificationHub(settings.postgres_dsn, application_name=f"{PROCESS_NAME}-listen")
            context = GatewayContext(
                app, settings, pool, hub, BrokerCommandPublisher(broker), lag, redis
            )
            for opener in openers:
                await opener(context)
            await hub.start()
            stack.push_async_callback(hub.stop)
            app.state.credentials = Credentials(settings.app_keys, settings.admin_token)
            app.state.user_tokens = UserTokens(settings.jwt_secret)
            app.state.pool, app.state.broker, app.state.redis, app.state.lag = (
                pool, broker, redis, lag,
            )  # fmt: skip
            yield

    return lifespan


def consumer_watches(settings: PlatformSettings) -> list[ConsumerWatch]:
    """Every consumer group whose checkpoints live in PostgreSQL, as readiness and the audit
    watch them (the analytics aggregator's live in Redis: `analytics_check` reads those)."""
    return [
        ConsumerWatch(service.schema, process.name, settings.topic(topic))
        for service in services()
        if service.schema is not None
        for process in service.processes
        if process.role.checkpoints_in_postgres
        for topic in process.consumes
    ]


def _checks(app: FastAPI, settings: PlatformSettings):  # type: ignore[no-untyped-def]
    watches = consumer_watches(settings)
    memory = ProgressMemory()

    async def postgres() -> None:
        await app.state.pool.fetchval("SELECT 1")

    async def kafka() -> None:
        if not await app.state.broker.ping(timeout=KAFKA_PING_TIMEOUT_SECONDS):
            raise ConnectionError("the broker did not answer")

    async def redis() -> None:
        await app.state.redis.ping()

    async def consumers() -> dict[str, Any]:
        return await consumers_check(app.state.pool, app.state.lag, watches, memory)

    checks: dict[str, Check] = {
        "postgres": postgres,
        "kafka": kafka,
        "redis": redis,
        "consumers": consumers,
    }
    for service in services():
        if service.readiness is not None:
            checks[service.name] = _service_check(app, load(service.readiness))
    return checks


def _service_check(app: FastAPI, check: Callable[[FastAPI], Awaitable[Any]]) -> Check:
    async def service_ready() -> Any:
        return await check(app)

    return service_ready


def _add_asyncapi_routes(app: FastAPI) -> None:
    topics = [(topic.name, load(topic.registry)) for s in services() for topic in s.topics]
    document = build_asyncapi_document(topics, VERSION)
    text = json.dumps(document)
    page = render_asyncapi_html(document)

    async def asyncapi_json(_: Request) -> Response:
        return Response(text, media_type="application/json")

    async def asyncapi_html(_: Request) -> Response:
        return HTMLResponse(page)

    app.add_route("/asyncapi.json", asyncapi_json, include_in_schema=False)
    app.add_route("/asyncapi", asyncapi_html, include_in_schema=False)
