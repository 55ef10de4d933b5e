"""The gateway's ceilings: bare Starlette endpoints of the same shapes, served the same way.

`/ledger/{owner_id}` answers a constant body. `/analytics/users/{user_id}/summary` does what
the real route cannot do without, the same script call adding up the user's day buckets in
Redis (BENCH_REDIS_URL, under BENCH_ANALYTICS_PREFIX), and answers a body of the summary's
shape.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.analytics.adapters.redis_reads import SUMMARY

BODY = orjson.dumps(
    {
        "owner_id": "owner-1",
        "app": "healthai",
        "balance": 10,
        "last_updated": "2026-11-23T10:00:00Z",
        "position": "0:1",
    }
)


async def balance(_: Request) -> Response:
    return Response(BODY, media_type="application/json")


async def summary(request: Request) -> Response:
    prefix = os.environ["BENCH_ANALYTICS_PREFIX"]
    answer = await request.app.state.summary(args=[prefix, request.path_params["user_id"], "", ""])
    numbers = answer[1]
    body = {
        "average_transaction_value": 0, "highest_transaction_day": None,
        "transaction_count": int(numbers[0]), "totals": {"credit": 0, "debit": 0},
        "as_of": "2026-11-23T10:00:00Z",
    }  # fmt: skip
    return Response(orjson.dumps(body), media_type="application/json")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ.get("BENCH_REDIS_URL")
    app.state.redis = Redis.from_url(url) if url else None
    if app.state.redis is not None:
        app.state.summary = app.state.redis.register_script(SUMMARY)
    yield
    if app.state.redis is not None:
        await app.state.redis.aclose()


app = Starlette(
    routes=[
        Route("/ledger/{owner_id}", balance),
        Route("/analytics/users/{user_id}/summary", summary),
    ],
    lifespan=lifespan,
)
