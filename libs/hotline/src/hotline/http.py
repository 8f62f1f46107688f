"""HTTP conventions every service follows: `/healthz`, `/readyz`, `/metrics`, request metrics.

* `/healthz` — the process is alive (the event loop answers). Never checks dependencies, so a
  database outage does not make Kubernetes restart every pod.
* `/readyz` — every dependency check passes (broker metadata request, database ping); 503 with
  the failing checks named otherwise, so traffic is held back while a dependency is down.
* `/metrics` — Prometheus text exposition.
* `X-Hotline-Session` (`SESSION_HEADER`) — the console session an ops API call is made for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.metrics import DEPENDENCY_UP, HTTP_REQUESTS, HTTP_SECONDS, render_latest

ReadinessCheck = Callable[[], Awaitable[None]]

# The console names the session a call to the dispatcher's ops API is made for; the dispatcher
# refuses a session signed out on any console replica.
SESSION_HEADER = "X-Hotline-Session"


def ops_router(
    service: str, checks: Mapping[str, ReadinessCheck], timeout_s: float = 3.0
) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/readyz", summary="Readiness: broker and database reachable")
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}

        async def run(name: str, check: ReadinessCheck) -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    await check()
                results[name] = "ok"
                DEPENDENCY_UP.labels(service, name).set(1)
            except Exception as exc:
                results[name] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
                DEPENDENCY_UP.labels(service, name).set(0)

        await asyncio.gather(*(run(n, c) for n, c in checks.items()))
        ready = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "service": service, "checks": results},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = render_latest()
        return Response(content=body, media_type=content_type)

    return router


class RequestMetricsMiddleware:
    """Counts requests by route *template* (bounded labels, never a raw path).

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs a task per request.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_holder = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            if route not in ("/metrics", "/healthz", "/readyz"):
                status = f"{status_holder['code'] // 100}xx"
                HTTP_REQUESTS.labels(self.service, route, status).inc()
                HTTP_SECONDS.labels(self.service, route).observe(time.perf_counter() - start)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "other"))
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(getattr(candidate, "path", "other"))
    return "unmatched"
