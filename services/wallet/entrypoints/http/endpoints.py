"""The wallet's HTTP routes, mounted by the gateway: one router made of the use-case modules."""

from fastapi import APIRouter

from services.wallet.entrypoints.http import (
    auth_routes,
    operator_routes,
    records_routes,
    wallet_routes,
)

router = APIRouter()
for module in (auth_routes, wallet_routes, records_routes, operator_routes):
    router.routes.extend(module.router.routes)
