"""Service scaffolding every Hotline process shares: the FastAPI app and its lifecycle.

A service's `main.py` builds its settings, calls `configure_logging`, builds its dependencies
(producer, Mongo client, clock) and passes them to its app factory, which uses `create_app`
here. Background consumers run as tasks owned by the app's lifespan, so `/readyz`, `/metrics`
and graceful shutdown work the same way in every service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotline.http import ReadinessCheck, RequestMetricsMiddleware, ops_router
from hotline.logging import get_logger
from hotline.metrics import BUILD_INFO
from hotline.settings import DEFAULT_TRUSTED_PROXIES, IPNetwork, parse_networks

log = get_logger(__name__)

VERSION = "0.1.0"

# What a service trusts to name the client when its entry point passes nothing (settings default).
LOOPBACK_PROXIES = parse_networks(DEFAULT_TRUSTED_PROXIES)

Startup = Callable[[], Awaitable[None]]
Shutdown = Callable[[], Awaitable[None]]


class Lifecycle:
    """Start-up and shutdown steps plus background tasks, run by the app's lifespan."""

    def __init__(self) -> None:
        self.startup: list[Startup] = []
        self.shutdown: list[Shutdown] = []
        self.background: list[Callable[[], Awaitable[None]]] = []
        self.tasks: list[asyncio.Task[None]] = []

    def on_startup(self, fn: Startup) -> None:
        self.startup.append(fn)

    def on_shutdown(self, fn: Shutdown) -> None:
        self.shutdown.append(fn)

    def run_in_background(self, fn: Callable[[], Awaitable[None]]) -> None:
        """A long-running coroutine (a consumer loop, a timer); a crash stops the process."""
        self.background.append(fn)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        for step in self.startup:
            await step()
        for fn in self.background:
            task = asyncio.create_task(_guard(fn), name=getattr(fn, "__name__", "background"))
            self.tasks.append(task)
        try:
            yield
        finally:
            for task in self.tasks:
                task.cancel()
            for task in self.tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for step in reversed(self.shutdown):
                try:
                    await step()
                except Exception:
                    log.exception("shutdown step failed")


async def _guard(fn: Callable[[], Awaitable[None]]) -> None:
    """A background task that dies takes the process down, so the supervisor restarts it."""
    try:
        await fn()
    except asyncio.CancelledError:
        raise
    except BaseException:
        log.exception("background task crashed; exiting so the supervisor restarts us")
        import os
        import signal

        os.kill(os.getpid(), signal.SIGTERM)
        raise


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    checks: Mapping[str, ReadinessCheck],
    lifecycle: Lifecycle | None = None,
    version: str = VERSION,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """A FastAPI app with the ops routes, request metrics and error bodies that name the problem.

    Every error answer is JSON: `{"error": <short code>, "detail": <what was wrong>}`; a
    validation error lists the fields. Unexpected exceptions become a 500 whose body does not
    leak internals (and are logged with the traceback).
    """
    lifecycle = lifecycle or Lifecycle()
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifecycle.lifespan,
        **fastapi_kwargs,
    )
    app.state.lifecycle = lifecycle
    app.include_router(ops_router(service, checks))
    app.add_middleware(RequestMetricsMiddleware, service=service)
    BUILD_INFO.labels(service, version).set(1)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
                "problem": err.get("msg", "invalid"),
            }
            for err in exc.errors()[:20]
        ]
        summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:5])
        return JSONResponse(
            {"error": "invalid_request", "detail": summary, "errors": errors}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        body: dict[str, Any] = {"error": _error_code(exc.status_code), "detail": detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(
            {"error": "internal_error", "detail": "unexpected error; it was logged"},
            status_code=500,
        )

    return app


def _error_code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        410: "gone",
        413: "payload_too_large",
        415: "unsupported_media_type",
        422: "invalid_request",
        429: "too_many_requests",
        503: "unavailable",
    }.get(status, f"http_{status}")


def uvicorn_config(
    app: FastAPI,
    host: str,
    port: int,
    log_level: str,
    trusted_proxies: Iterable[IPNetwork] = LOOPBACK_PROXIES,
) -> uvicorn.Config:
    """The uvicorn configuration every service runs with.

    `trusted_proxies` (the settings' `trusted_proxy_networks`): from these peers uvicorn takes
    the client address from X-Forwarded-For (the rightmost hop not in them) and the scheme from
    X-Forwarded-Proto; from other peers both headers are ignored, so a client cannot pick the
    address it is rate-limited under.
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
        proxy_headers=True,
        # Normalised strings: uvicorn (>= 0.31 takes CIDR ranges) reads a range with host bits
        # set, such as 10.1.2.3/8, as a literal name that no address matches.
        forwarded_allow_ips=[str(network) for network in trusted_proxies],
        timeout_graceful_shutdown=15,
        log_config=None,  # keep hotline.logging's masked JSON handler
    )


def serve(
    app: FastAPI,
    host: str,
    port: int,
    log_level: str = "warning",
    *,
    trusted_proxies: Iterable[IPNetwork] = LOOPBACK_PROXIES,
) -> None:
    """Run the app under uvicorn (SIGTERM → graceful shutdown through the lifespan).

    Pass `trusted_proxies=settings.trusted_proxy_networks` (see `uvicorn_config`).
    """
    uvicorn.Server(uvicorn_config(app, host, port, log_level, trusted_proxies)).run()


def serve_built(
    build: Callable[[], FastAPI],
    host: str,
    port: int,
    log_level: str = "warning",
    *,
    trusted_proxies: Iterable[IPNetwork] = LOOPBACK_PROXIES,
) -> None:
    """Build the app inside the running event loop, then serve it.

    aiokafka clients must be created in the loop that runs them; a service whose factory
    creates producers or consumers eagerly is served through this.
    """

    async def _main() -> None:
        app = build()
        await uvicorn.Server(uvicorn_config(app, host, port, log_level, trusted_proxies)).serve()

    asyncio.run(_main())
