"""The on-call board (trực ban): who is on call now in each unit, their channels, their open
cases and unacknowledged alerts; shift overrides by the Staff Office."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from hotline.clock import LOCAL_TZ
from hotline.logging import get_logger
from hotline_console import i18n, metrics
from hotline_console.auth import Session, may_override_shifts
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

DUTIES = ("officer", "call_taker", "staff_leader")


async def board_data(request: Request, session: Session) -> dict[str, Any]:
    dispatcher = console_of(request).dispatcher
    on_call, board, overrides = await asyncio.gather(
        dispatcher.get("/on-call", session.caller),
        dispatcher.get("/board", session.caller),
        dispatcher.get("/shift-overrides", session.caller),
    )
    return {
        "on_call": on_call,
        "board": board,
        "overrides": overrides,
        "now": datetime.now(LOCAL_TZ).strftime("%H:%M %d/%m/%Y"),
    }


@router.get("/on-call")
async def board_page(request: Request) -> Response:
    session = require_session(request)
    data = await board_data(request, session)
    people: list[dict[str, Any]] = []
    if may_override_shifts(session.identity):
        people = await console_of(request).dispatcher.get("/people", session.caller)
    return render(
        request,
        "board.html",
        {**data, "people": people, "duties": DUTIES, "may_override": bool(people)},
        session=session,
    )


@router.get("/on-call/live")
async def board_live(request: Request) -> Response:
    session = require_session(request)
    data = await board_data(request, session)
    return render(
        request,
        "_board_units.html",
        {**data, "may_override": may_override_shifts(session.identity)},
        session=session,
    )


@router.post("/on-call/overrides")
async def add_override(request: Request) -> Response:
    session = require_session(request)
    form = await form_with_csrf(request, session)
    lang = lang_of(request)
    start = None
    if form.get("start"):
        try:
            start = datetime.fromisoformat(form["start"]).replace(tzinfo=LOCAL_TZ).isoformat()
        except ValueError:
            start = None
    body: dict[str, Any] = {
        "unit_id": form.get("unit_id", ""),
        "duty": form.get("duty", "officer"),
        "person_id": form.get("person_id", ""),
        "replaces_id": form.get("replaces_id") or None,
        "start": start,
        "hours": float(form.get("hours") or 12),
        "reason": form.get("reason", "").strip(),
    }
    try:
        await console_of(request).dispatcher.post("/shift-overrides", session.caller, body)
    except ApiError as exc:
        metrics.ACTIONS.labels("shift_override", "rejected").inc()
        flash(session, "error", api_error_message(exc, lang))
        return RedirectResponse("/on-call", status_code=303)
    metrics.ACTIONS.labels("shift_override", "ok").inc()
    flash(session, "ok", i18n.text("case.done", lang))
    return RedirectResponse("/on-call", status_code=303)


@router.post("/on-call/overrides/{override_id}/cancel")
async def cancel_override(
    request: Request, override_id: str = Path(pattern=r"^[A-Za-z0-9_-]{8,64}$")
) -> Response:
    session = require_session(request)
    await form_with_csrf(request, session)
    lang = lang_of(request)
    try:
        await console_of(request).dispatcher.delete(
            f"/shift-overrides/{override_id}", session.caller
        )
    except ApiError as exc:
        flash(session, "error", api_error_message(exc, lang))
        return RedirectResponse("/on-call", status_code=303)
    metrics.ACTIONS.labels("shift_override_cancel", "ok").inc()
    flash(session, "ok", i18n.text("case.done", lang))
    return RedirectResponse("/on-call", status_code=303)
