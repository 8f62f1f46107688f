"""Sign-in with an ops API token, sign-out, the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hotline.logging import get_logger
from hotline_console import i18n, metrics
from hotline_console.auth import (
    LANG_COOKIE,
    PRESESSION_COOKIE,
    ROLE_RANK,
    SESSION_COOKIE,
    AttemptLimiter,
    Identity,
    client_address,
    csrf_ok,
    sign,
    signin_csrf,
)
from hotline_console.clients import ApiError
from hotline_console.web import (
    console_of,
    current_session,
    form_with_csrf,
    lang_of,
    new_nonce,
    render,
    require_session,
    safe_next,
)

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)


def _limiter(request: Request) -> AttemptLimiter:
    limiter: AttemptLimiter = request.app.state.sign_in_limiter
    return limiter


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str = "/") -> Response:
    if current_session(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, next)


def _form(request: Request, next: str, error: str | None = None, status: int = 200) -> Response:
    console = console_of(request)
    nonce = request.cookies.get(PRESESSION_COOKIE) or new_nonce()
    response = render(
        request,
        "sign_in.html",
        {
            "next": safe_next(next),
            "signin_csrf": signin_csrf(console.secret, nonce),
            "error": error,
        },
        status=status,
    )
    response.set_cookie(
        PRESESSION_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=console.settings.secure_cookies,
    )
    return response


@router.post("/sign-in")
async def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=512)] = "",
    csrf_token: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    console = console_of(request)
    lang = lang_of(request)
    nonce = request.cookies.get(PRESESSION_COOKIE)
    if not nonce or not csrf_ok(signin_csrf(console.secret, nonce), csrf_token):
        metrics.SIGN_INS.labels("csrf").inc()
        metrics.CSRF_REJECTED.inc()
        return render(request, "error.html", {"message": i18n.text("error.csrf", lang)}, status=403)
    client = client_address(
        request.client.host if request.client else None,
        ",".join(request.headers.getlist("x-forwarded-for")),
        console.settings.trusted_proxy_networks,
    )
    limiter = _limiter(request)
    if limiter.blocked(client):
        metrics.SIGN_INS.labels("limited").inc()
        return _form(request, next, i18n.text("signin.too_many", lang), status=429)
    token = token.strip()
    if not token:
        metrics.SIGN_INS.labels("invalid").inc()
        limiter.failed(client)
        return _form(request, next, i18n.text("signin.invalid", lang), status=401)
    try:
        me = await console.dispatcher.get("/me", token)
    except ApiError as exc:
        if exc.status in (401, 403):
            metrics.SIGN_INS.labels("invalid").inc()
            limiter.failed(client)
            log.info("sign-in refused", extra={"status": exc.status})
            return _form(request, next, i18n.text("signin.invalid", lang), status=401)
        metrics.SIGN_INS.labels("unavailable").inc()
        return _form(request, next, i18n.text("signin.unavailable", lang), status=503)
    role = str(me.get("role"))
    if role not in ROLE_RANK:
        metrics.SIGN_INS.labels("invalid").inc()
        return _form(request, next, i18n.text("signin.invalid", lang), status=403)
    identity = Identity(id=str(me["id"]), role=role, unit=me.get("unit"), name=me.get("name"))  # type: ignore[arg-type]
    session = console.sessions.create(token, identity)
    metrics.SIGN_INS.labels("ok").inc()
    log.info("signed in", extra={"person_id": identity.id, "role": identity.role})
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sign(console.secret, session.sid),
        max_age=console.settings.session_max_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=console.settings.secure_cookies,
        path="/",
    )
    response.delete_cookie(PRESESSION_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    session = require_session(request)
    await form_with_csrf(request, session)
    console_of(request).sessions.delete(session.sid)
    log.info("signed out", extra={"person_id": session.identity.id})
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
async def language(request: Request, code: str, next: str = "/") -> Response:
    """A preference, not an action on data: a plain link, no form."""
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        i18n.choose_lang(code),
        max_age=365 * 24 * 3600,
        samesite="lax",
        secure=console_of(request).settings.secure_cookies,
    )
    return response
