"""`/health`, `/ready` and `/metrics`: the same three routes on the gateway and every worker.

`/health` says the process is alive. `/ready` checks each dependency with a short timeout and
reports how far each consumer lags behind the log. `/metrics` is Prometheus text.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CHECK_TIMEOUT_SECONDS = 2.0

Check = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Readiness:
    """Named dependency checks. A check returns details (or None) and raises when unreachable."""

    checks: Mapping[str, Check]
    process: str

    async def evaluate(self) -> tuple[bool, dict[str, Any]]:
        names = list(self.checks)
        results = await asyncio.gather(
            *(self._run(self.checks[name]) for name in names), return_exceptions=False
        )
        report = dict(zip(names, results, strict=True))
        ready = all(result["ok"] for result in report.values())
        return ready, {"status": "ready" if ready else "not_ready", "process": self.process,
                       "checks": report}  # fmt: skip

    @staticmethod
    async def _run(check: Check) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            details = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        except Exception as error:
            return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
        result: dict[str, Any] = {"ok": True, "seconds": round(time.perf_counter() - started, 4)}
        if details is not None:
            result["details"] = details
        return result


def health_routes(readiness: Readiness) -> list[Route]:
    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "process": readiness.process})

    async def ready(_: Request) -> Response:
        is_ready, report = await readiness.evaluate()
        return JSONResponse(report, status_code=200 if is_ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
