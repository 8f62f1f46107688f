"""The call-taker's desk: log a phone call in a few seconds, return missed calls.

A logged call goes to ingest's `/desk/call-summaries` with the console's desk token, so it
enters the pipeline (triage, routing, alerts) like any other message. The page then follows
the message until the dispatcher decided it, shows the case, and puts "logged by <person>" on
that case's timeline through the ops API (ingest only knows the console's desk identity).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from hotline.logging import get_logger
from hotline_console import i18n, metrics
from hotline_console.auth import Session, may_log_calls
from hotline_console.clients import ApiError
from hotline_console.web import (
    api_error_message,
    console_of,
    flash,
    form_with_csrf,
    lang_of,
    render,
    require_session,
)

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

EventId = Path(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:~-]+$")


def _forbidden(request: Request, session: Session) -> Response:
    return render(
        request,
        "error.html",
        {"message": i18n.text("error.forbidden", lang_of(request))},
        session=session,
        status=403,
    )


async def _callbacks(request: Request, session: Session) -> list[dict[str, Any]]:
    found = await console_of(request).dispatcher.get(
        "/cases", session.caller, [("kind", "callback"), ("open_only", "true"), ("limit", "100")]
    )
    items: list[dict[str, Any]] = found["items"]
    return [c for c in items if not c.get("callback_done")]


@router.get("/desk")
async def desk(request: Request, sent: str | None = None) -> Response:
    session = require_session(request)
    if not may_log_calls(session.identity):
        return _forbidden(request, session)
    console = console_of(request)
    callbacks, units = await asyncio.gather(
        _callbacks(request, session), console.units(session.caller)
    )
    # The reporter's number of each callback task (masked unless this role may see it).
    details = await asyncio.gather(
        *(console.dispatcher.get(f"/cases/{c['case_id']}", session.caller) for c in callbacks[:30])
    )
    pending = [d for d in details if not (d.get("callback") or {}).get("done_at")]
    return render(
        request,
        "desk.html",
        {
            "summary_id": "cs-" + secrets.token_hex(12),
            "sent": sent,
            "callbacks": pending,
            "units": units,
        },
        session=session,
    )


@router.post("/desk/calls")
async def log_call(request: Request) -> Response:
    session = require_session(request)
    form = await form_with_csrf(request, session)
    if not may_log_calls(session.identity):
        return _forbidden(request, session)
    lang = lang_of(request)
    body: dict[str, Any] = {
        "summary_id": form.get("summary_id") or "cs-" + secrets.token_hex(12),
        "caller_number": form.get("caller_number", "").strip(),
        "summary": form.get("summary", "").strip(),
        "place": form.get("place", "").strip() or None,
        "caller_name": form.get("caller_name", "").strip() or None,
        "call_started_at": datetime.now(UTC).isoformat(),
        "language": "en" if lang == "en" and form.get("language") == "en" else None,
        # Who is at the desk: the dispatcher records "call logged by <person>" on the case
        # from the event itself, whether or not this page stays open.
        "logged_for": session.identity.id,
    }
    console = console_of(request)
    try:
        # The call goes to ingest with the console's desk token, so the person's own token is
        # checked first: one revoked at the dispatcher logs no call (whichever replica holds a
        # copy of the session cookie). An unreachable dispatcher does not stop the desk.
        await console.dispatcher.get("/me", session.caller)
    except ApiError as exc:
        if exc.status == 401:
            raise  # the session ends (see app.api_error)
    try:
        receipt = await console.ingest.call_summary(body)
    except ApiError as exc:
        metrics.ACTIONS.labels("log_call", "rejected" if exc.status < 500 else "error").inc()
        message = (
            f"{i18n.text('error.invalid', lang)} {exc.detail}"
            if exc.status in (400, 422)
            else i18n.text("desk.ingest_error", lang)
        )
        return render(
            request,
            "desk.html",
            {
                "summary_id": body["summary_id"],
                "error": message,
                "form": form,
                "callbacks": await _callbacks_safe(request, session),
                "units": [],
            },
            session=session,
            status=exc.status if exc.status in (400, 422, 429) else 503,
        )
    metrics.ACTIONS.labels("log_call", "ok").inc()
    event_id = receipt.get("event_id")
    log.info("call logged", extra={"event_id": event_id, "status": receipt.get("status")})
    if receipt.get("status") == "duplicate":
        flash(session, "ok", i18n.text("desk.duplicate", lang))
    return RedirectResponse(f"/desk?sent={event_id}" if event_id else "/desk", status_code=303)


async def _callbacks_safe(request: Request, session: Session) -> list[dict[str, Any]]:
    try:
        return await _callbacks(request, session)
    except ApiError:
        return []


@router.get("/desk/calls/{event_id}")
async def call_status(request: Request, event_id: str = EventId) -> Response:
    """Polled by the page until the dispatcher decided the logged call."""
    session = require_session(request)
    console = console_of(request)
    try:
        message = await console.dispatcher.get(f"/messages/{event_id}", session.caller)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return render(
            request, "_desk_status.html", {"event_id": event_id, "message": None}, session=session
        )
    if message.get("case_id"):
        try:
            await console.dispatcher.post(f"/messages/{event_id}/logged", session.caller)
        except ApiError as exc:
            log.warning("could not attribute the call", extra={"status": exc.status})
    return render(
        request, "_desk_status.html", {"event_id": event_id, "message": message}, session=session
    )


@router.post("/desk/callbacks/{case_id}")
async def called_back(
    request: Request, case_id: str = Path(pattern=r"^[A-Z]{2,6}-\d{8}-\d{4,}$")
) -> Response:
    session = require_session(request)
    form = await form_with_csrf(request, session)
    lang = lang_of(request)
    body = {"reached": form.get("reached") == "yes", "note": form.get("note", "").strip() or None}
    try:
        await console_of(request).dispatcher.post(
            f"/cases/{case_id}/callback-done", session.caller, body
        )
    except ApiError as exc:
        metrics.ACTIONS.labels("callback_done", "rejected").inc()
        flash(session, "error", api_error_message(exc, lang))
        return RedirectResponse("/desk", status_code=303)
    metrics.ACTIONS.labels("callback_done", "ok").inc()
    flash(session, "ok", i18n.text("case.done", lang))
    return RedirectResponse("/desk", status_code=303)
