"""Wiring: the console's app from its settings (and, for tests, ready-made HTTP clients)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from hotline.clock import Clock
from hotline.contracts.topics import CASE_EVENTS, DELIVERIES, DISPATCHED
from hotline.kafka import ensure_topics
from hotline.logging import get_logger
from hotline.service import Lifecycle, create_app
from hotline_console import i18n
from hotline_console import live as live_view
from hotline_console.auth import AttemptLimiter, Sessions
from hotline_console.clients import ApiError, DispatcherClient, IngestClient
from hotline_console.live import Broadcaster, LiveFeed
from hotline_console.settings import ConsoleSettings
from hotline_console.views import routers
from hotline_console.web import (
    HERE,
    Console,
    CsrfRejected,
    SecurityHeaders,
    SessionCookies,
    SignInRequired,
    api_error_message,
    current_session,
    end_session,
    lang_of,
    not_signed_in,
    render,
)

log = get_logger(__name__)

SERVICE = "console"


@dataclass
class Components:
    app: FastAPI
    console: Console


def build(
    settings: ConsoleSettings,
    *,
    dispatcher_http: httpx.AsyncClient | None = None,
    ingest_http: httpx.AsyncClient | None = None,
    live: bool = True,
    clock: Clock | None = None,
) -> Components:
    """The console app. `live=False` leaves the Kafka consumer out (tests of pages alone);
    `clock` judges the sessions' ages (tests move it)."""
    timeout = httpx.Timeout(settings.http_timeout_s)
    dispatcher_http = dispatcher_http or httpx.AsyncClient(
        base_url=settings.dispatcher_url, timeout=timeout
    )
    ingest_http = ingest_http or httpx.AsyncClient(base_url=settings.ingest_url, timeout=timeout)
    broadcaster = Broadcaster()
    topics = settings.topics
    feed = (
        LiveFeed(
            settings.kafka_bootstrap_servers,
            [
                (topics.dispatched, live_view.DISPATCHED),
                (topics.case_events, live_view.CASE_EVENTS),
                (topics.deliveries, live_view.DELIVERIES),
            ],
            settings.consumer_group_prefix,
            broadcaster,
        )
        if live
        else None
    )
    secret = settings.session_secret.get_secret_value().encode()
    previous = settings.session_secret_previous
    previous_secret = previous.get_secret_value().encode() if previous else None
    console = Console(
        settings=settings,
        dispatcher=DispatcherClient(dispatcher_http),
        ingest=IngestClient(ingest_http, settings.desk_token.get_secret_value()),
        sessions=Sessions(
            secret,
            previous=[previous_secret] if previous_secret else [],
            idle_s=settings.session_idle_minutes * 60,
            max_age_s=settings.session_max_hours * 3600,
            refresh_s=settings.session_refresh_s,
            max_signed_out=settings.max_signed_out,
            clock=clock,
        ),
        broadcaster=broadcaster,
        live=feed,
        secret=secret,
        previous_secret=previous_secret,
    )
    lifecycle = Lifecycle()

    async def prepare() -> None:
        if feed is not None:
            await ensure_topics(
                settings.kafka_bootstrap_servers, topics, [DISPATCHED, CASE_EVENTS, DELIVERIES]
            )

    async def close() -> None:
        broadcaster.closing.set()
        await dispatcher_http.aclose()
        await ingest_http.aclose()

    lifecycle.on_startup(prepare)
    lifecycle.on_shutdown(close)
    checks = {"dispatcher": console.dispatcher.ready}
    if feed is not None:
        lifecycle.run_in_background(feed.run)
        checks["live"] = feed.ready

    app = create_app(
        service=SERVICE,
        title="Hotline console",
        description="The Staff Office's web console (server-rendered pages, htmx, SSE).",
        checks=checks,
        lifecycle=lifecycle,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.console = console
    app.state.sign_in_limiter = AttemptLimiter(settings.sign_in_per_minute)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(SessionCookies, console=console)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in routers():
        app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        return not_signed_in(request)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        message = i18n.text("error.csrf", lang_of(request))
        return render(
            request,
            "error.html",
            {"message": message},
            session=current_session(request),
            status=403,
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        session = current_session(request)
        if exc.status == 401 and session is not None:
            # The token was revoked or changed: the session is of no use any more.
            end_session(request, session)
            return RedirectResponse("/sign-in", status_code=303)
        message = api_error_message(exc, lang_of(request))
        status = exc.status if 400 <= exc.status < 600 else 502
        return render(request, "error.html", {"message": message}, session=session, status=status)

    return Components(app, console)
