"""Sign-in with an ops API token, sign-out, the language switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hotline.logging import get_logger
from hotline_console import i18n, metrics
from hotline_console.auth import (
    LANG_COOKIE,
    PRESESSION_COOKIE,
    ROLE_RANK,
    AttemptLimiter,
    Identity,
    client_address,
    signin_csrf,
)
from hotline_console.clients import ApiError, Caller
from hotline_console.web import (
    console_of,
    current_session,
    end_session,
    form_with_csrf,
    lang_of,
    new_nonce,
    render,
    require_session,
    safe_next,
    start_session,
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
    if not nonce or not console.signin_csrf_ok(nonce, csrf_token):
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
        me = await console.dispatcher.get("/me", Caller(token))
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
    unit, name = me.get("unit"), me.get("name")
    identity = Identity(
        id=str(me["id"]),
        role=role,  # type: ignore[arg-type]
        unit=None if unit is None else str(unit),
        name=None if name is None else str(name),
    )
    session = console.sessions.create(token, identity)
    start_session(request, session)  # the session cookie goes out with the response
    metrics.SIGN_INS.labels("ok").inc()
    log.info("signed in", extra={"person_id": identity.id, "role": identity.role})
    response = RedirectResponse(safe_next(next), status_code=303)
    response.delete_cookie(PRESESSION_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """Clears the session cookie and refuses the session on this replica at once; the
    dispatcher, told of it, refuses it for every replica (a copy of the cookie gets the
    sign-in page at its next page, fragment or action wherever it lands). Should the
    dispatcher not answer, the sign-out still holds here, and it is logged."""
    session = require_session(request, refresh=False)
    await form_with_csrf(request, session)
    console = console_of(request)
    until = datetime.now(UTC) + timedelta(seconds=console.sessions.max_age(session))
    outcome = "shared"
    try:
        await console.dispatcher.post(
            "/session/sign-out", session.caller, {"until": until.isoformat()}
        )
    except ApiError as exc:
        if exc.status != 401:  # 401: the token was revoked, or the session signed out already
            outcome = "local"
            log.warning(
                "sign-out not recorded at the dispatcher: other replicas accept the session",
                extra={"status": exc.status, "person_id": session.identity.id},
            )
    metrics.SIGN_OUTS.labels(outcome).inc()
    end_session(request, session)
    log.info("signed out", extra={"person_id": session.identity.id})
    return RedirectResponse("/sign-in", status_code=303)


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
