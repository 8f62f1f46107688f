"""What every page shares: the console's dependencies, templates, sessions, CSRF, errors.

Pages are rendered on the server (Jinja2); htmx swaps fragments and listens to the SSE stream.
Forms post to the console, which calls the ops API with the person's token and redirects back
(post/redirect/get), so everything also works without JavaScript.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.clock import LOCAL_TZ, ensure_utc
from hotline.logging import get_logger
from hotline_console import i18n, metrics
from hotline_console.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    LANG_COOKIE,
    SESSION_COOKIE,
    Session,
    SessionStore,
    csrf_ok,
    unsign,
)
from hotline_console.clients import ApiError, DispatcherClient, IngestClient
from hotline_console.live import Broadcaster, LiveFeed
from hotline_console.settings import ConsoleSettings

log = get_logger(__name__)

HERE = Path(__file__).resolve().parent
UNITS_TTL_S = 300.0

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@dataclass
class Console:
    """The console's dependencies, built in `app.build` and kept on `app.state.console`."""

    settings: ConsoleSettings
    dispatcher: DispatcherClient
    ingest: IngestClient
    sessions: SessionStore
    broadcaster: Broadcaster
    live: LiveFeed | None
    secret: bytes
    templates: Environment = field(init=False)
    _units: tuple[float, list[dict[str, Any]]] | None = None

    def __post_init__(self) -> None:
        self.templates = make_templates()

    async def units(self, token: str) -> list[dict[str, Any]]:
        """The organisation's units (configuration: cached for a few minutes)."""
        now = time.monotonic()
        if self._units is None or now - self._units[0] > UNITS_TTL_S:
            units: list[dict[str, Any]] = await self.dispatcher.get("/units", token)
            self._units = (now, units)
        return self._units[1]


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


# --------------------------------------------------------------------------- templates


def local_time(value: Any, fmt: str = "%H:%M %d/%m") -> str:
    """An API timestamp (ISO text or datetime, naive = UTC) in Huế local time."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if not isinstance(value, datetime):
        return str(value)
    return ensure_utc(value).astimezone(LOCAL_TZ).strftime(fmt)


def _urlquote(value: object) -> str:
    return quote(str(value), safe="")


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = local_time
    env.filters["urlquote"] = _urlquote
    env.globals["urlencode"] = urlencode
    return env


def lang_of(request: Request) -> i18n.Lang:
    return i18n.choose_lang(request.cookies.get(LANG_COOKIE))


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    session: Session | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    console = console_of(request)
    lang = lang_of(request)
    flash: list[tuple[str, str]] = []
    if session is not None and session.flash and not template.startswith("_"):
        flash, session.flash = session.flash, []
    values = {
        "request": request,
        "lang": lang,
        "t": lambda key: i18n.text(key, lang),
        "label": lambda kind, value: i18n.label(kind, value, lang),
        "session": session,
        "me": session.identity if session else None,
        "csrf": session.csrf if session else "",
        "csrf_field": CSRF_FIELD,
        "flash": flash,
        "path": request.url.path,
        "full_path": _full_path(request),
    }
    values.update(context or {})
    body = console.templates.get_template(template).render(values)
    return HTMLResponse(body, status_code=status, headers=headers)


def _full_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


# --------------------------------------------------------------------------- sessions and CSRF


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in page, fragments answer 401."""


class CsrfRejected(Exception):
    """A form without the session's CSRF token."""


def current_session(request: Request) -> Session | None:
    console = console_of(request)
    sid = unsign(console.secret, request.cookies.get(SESSION_COOKIE))
    return console.sessions.get(sid)


def require_session(request: Request) -> Session:
    session = current_session(request)
    if session is None:
        raise SignInRequired()
    return session


async def form_with_csrf(request: Request, session: Session) -> dict[str, str]:
    """The posted form, after checking its CSRF token (field or `X-CSRF-Token` header)."""
    form = await request.form()
    values = {k: str(v) for k, v in form.multi_items() if isinstance(v, str)}
    given = values.pop(CSRF_FIELD, None) or request.headers.get(CSRF_HEADER)
    if not csrf_ok(session.csrf, given):
        metrics.CSRF_REJECTED.inc()
        log.warning("form refused: CSRF token missing or wrong", extra={"path": request.url.path})
        raise CsrfRejected()
    return values


def flash(session: Session, kind: str, message: str) -> None:
    session.flash.append((kind, message))
    del session.flash[:-5]


def back(request: Request, fallback: str) -> RedirectResponse:
    """303 to a local path given in `next` (never another site), else `fallback`."""
    target = request.query_params.get("next") or fallback
    return RedirectResponse(safe_next(target, fallback), status_code=303)


def safe_next(target: str | None, fallback: str = "/") -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return fallback
    return target


def api_error_message(exc: ApiError, lang: str) -> str:
    key = {
        403: "error.forbidden",
        404: "error.not_found",
        409: "error.conflict",
        422: "error.invalid",
        503: "error.unavailable",
    }.get(exc.status, "error.conflict")
    prefix = i18n.text(key, lang)
    if exc.status in (409, 422):
        return f"{prefix} {exc.detail}"
    return prefix


async def ops_post(
    request: Request, session: Session, action: str, path: str, body: dict[str, Any], back: str
) -> tuple[Any, Response | None]:
    """POST a form's action to the ops API with the person's token, counted by outcome.

    Returns (the API's answer, None), or (None, the redirect to answer with): to `back` with
    the error flashed, or to the sign-in page when the dispatcher no longer knows the token."""
    try:
        result = await console_of(request).dispatcher.post(path, session.token, body)
    except ApiError as exc:
        metrics.ACTIONS.labels(action, "rejected" if exc.status < 500 else "error").inc()
        if exc.status == 401:
            console_of(request).sessions.delete(session.sid)
            return None, RedirectResponse("/sign-in", status_code=303)
        flash(session, "error", api_error_message(exc, lang_of(request)))
        return None, RedirectResponse(back, status_code=303)
    metrics.ACTIONS.labels(action, "ok").inc()
    return result, None


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


# --------------------------------------------------------------------------- headers


class SecurityHeaders:
    """CSP, no framing, no sniffing, no referrer outside the site, no caching of pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


def not_signed_in(request: Request) -> Response:
    """Where a request without a session goes: the sign-in page (htmx follows HX-Redirect)."""
    target = "/sign-in?" + urlencode({"next": _full_path(request)})
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    if request.method != "GET" or request.url.path == "/events":
        return Response("sign in first", status_code=401, media_type="text/plain")
    return RedirectResponse(target, status_code=303)
