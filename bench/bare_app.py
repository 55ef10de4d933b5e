"""The gateway's ceiling: a bare Starlette endpoint of the same shape, served the same way."""

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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


app = Starlette(routes=[Route("/ledger/{owner_id}", balance)])
