"""What every page shares: the console's dependencies, templates, sessions, CSRF, errors.

Pages are rendered on the server (Jinja2); htmx swaps fragments and listens to the SSE stream.
Forms post to the console, which calls the ops API with the person's token and redirects back
(post/redirect/get), so everything also works without JavaScript.

Sessions and flash messages live in sealed cookies (`auth.Sessions`). A request reads its
session once (`current_session`); what it changes (a session started, re-issued or ended, a
message for the next page, a message shown) is noted on the request and written as Set-Cookie
headers by `SessionCookies` when the response starts, whichever view or error handler answers.
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
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.clock import LOCAL_TZ, ensure_utc
from hotline.logging import get_logger
from hotline_console import i18n, metrics
from hotline_console.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    FLASH_COOKIE,
    FLASH_TTL_S,
    LANG_COOKIE,
    MAX_FLASH_MESSAGES,
    SESSION_COOKIE,
    Session,
    Sessions,
    csrf_ok,
    signin_csrf,
)
from hotline_console.clients import ApiError, Caller, DispatcherClient, IngestClient
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
    sessions: Sessions
    broadcaster: Broadcaster
    live: LiveFeed | None
    secret: bytes
    previous_secret: bytes | None = None
    templates: Environment = field(init=False)
    _units: tuple[float, list[dict[str, Any]]] | None = None

    def __post_init__(self) -> None:
        self.templates = make_templates()

    async def units(self, caller: Caller) -> list[dict[str, Any]]:
        """The organisation's units (configuration: cached for a few minutes)."""
        now = time.monotonic()
        if self._units is None or now - self._units[0] > UNITS_TTL_S:
            units: list[dict[str, Any]] = await self.dispatcher.get("/units", caller)
            self._units = (now, units)
        return self._units[1]

    def signin_csrf_ok(self, nonce: str, given: str) -> bool:
        """The sign-in form's token, made by any replica (with the previous secret too, during
        a rotation)."""
        accepted = [self.secret] + ([self.previous_secret] if self.previous_secret else [])
        return any(csrf_ok(signin_csrf(secret, nonce), given) for secret in accepted)


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
    if session is not None and not template.startswith("_"):
        flash = take_flash(request, session)
    values = {
        "request": request,
        "lang": lang,
        "t": lambda key: i18n.text(key, lang),
        "label": lambda kind, value: i18n.label(kind, value, lang),
        "reason": lambda text: i18n.reason(str(text), lang),
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


@dataclass
class CookieChanges:
    """What one request does to the session and flash cookies (see `SessionCookies`)."""

    read: bool = False
    session: Session | None = None
    issue: bool = False  # set the session cookie (signed in, or last seen moved)
    end: bool = False  # clear it (signed out, or the token is no longer valid)
    clear_flash: bool = False  # the pending messages were shown


COOKIE_CHANGES = "hotline_console_cookies"


def cookie_changes(request: Request) -> CookieChanges:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    changes: CookieChanges = state.setdefault(COOKIE_CHANGES, CookieChanges())
    return changes


def current_session(request: Request, *, refresh: bool = True) -> Session | None:
    """The request's session from its cookie (read once per request), or None.

    With `refresh`, a request counts as activity: when last seen is older than
    `CONSOLE_SESSION_REFRESH_S`, it moves and the cookie is re-issued on the response. The live
    stream reads without it (see `views.queue.events`)."""
    changes = cookie_changes(request)
    sessions = console_of(request).sessions
    if not changes.read:
        changes.read = True
        changes.session = sessions.read(request.cookies.get(SESSION_COOKIE))
    session = changes.session
    if session is not None and refresh and not changes.end and sessions.touch(session):
        changes.issue = True
    return session


def require_session(request: Request, *, refresh: bool = True) -> Session:
    session = current_session(request, refresh=refresh)
    if session is None:
        raise SignInRequired()
    return session


def start_session(request: Request, session: Session) -> None:
    """Signed in: the response carries the new session's cookie."""
    changes = cookie_changes(request)
    changes.read, changes.session, changes.issue, changes.end = True, session, True, False


def end_session(request: Request, session: Session) -> None:
    """Signed out (or the token was refused): the response clears the cookies, and this
    replica refuses the session from now on, a copy of the cookie included. Other replicas
    accept a copy until it expires, unless the token is revoked at the dispatcher."""
    console_of(request).sessions.end(session)
    changes = cookie_changes(request)
    changes.end, changes.issue = True, False
    changes.clear_flash = FLASH_COOKIE in request.cookies


def take_flash(request: Request, session: Session) -> list[tuple[str, str]]:
    """The messages for this page: those the previous request left in the flash cookie and
    those of this request; shown once (the cookie is cleared)."""
    changes = cookie_changes(request)
    shown: list[tuple[str, str]] = []
    if not changes.clear_flash and FLASH_COOKIE in request.cookies:
        shown = console_of(request).sessions.read_flash(request.cookies[FLASH_COOKIE], session)
        changes.clear_flash = True
    shown, session.flash = shown + session.flash, []
    return shown


class SessionCookies:
    """Writes what a request changed in its session and flash cookies (`CookieChanges`) as
    Set-Cookie headers when its response starts, with the attributes of every console cookie:
    HttpOnly, SameSite=Strict, Path=/, Secure in production."""

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        changes = CookieChanges()
        scope.setdefault("state", {})[COOKIE_CHANGES] = changes

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookies = self.set_cookies(changes)
                if cookies:
                    headers = MutableHeaders(scope=message)
                    for value in cookies:
                        headers.append("set-cookie", value)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def set_cookies(self, changes: CookieChanges) -> list[str]:
        """The Set-Cookie values for these changes (Starlette's own cookie formatting)."""
        out = Response()
        secure = self.console.settings.secure_cookies
        attrs: dict[str, Any] = {"httponly": True, "samesite": "strict", "secure": secure}
        session, sessions = changes.session, self.console.sessions
        if changes.end:
            out.delete_cookie(SESSION_COOKIE, path="/", **attrs)
        elif changes.issue and session is not None:
            out.set_cookie(
                SESSION_COOKIE,
                sessions.cookie(session),
                max_age=sessions.max_age(session),
                path="/",
                **attrs,
            )
        if session is not None and session.flash and not changes.end:
            out.set_cookie(
                FLASH_COOKIE,
                sessions.flash_cookie(session),
                max_age=FLASH_TTL_S,
                path="/",
                **attrs,
            )
        elif changes.clear_flash:
            out.delete_cookie(FLASH_COOKIE, path="/", **attrs)
        return [v.decode("latin-1") for k, v in out.raw_headers if k == b"set-cookie"]


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
    """A message for the next page the person sees (it travels in the flash cookie)."""
    session.flash.append((kind, message))
    del session.flash[:-MAX_FLASH_MESSAGES]


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
        result = await console_of(request).dispatcher.post(path, session.caller, body)
    except ApiError as exc:
        metrics.ACTIONS.labels(action, "rejected" if exc.status < 500 else "error").inc()
        if exc.status == 401:
            end_session(request, session)
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
