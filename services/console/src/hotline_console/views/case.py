"""The case page: the whole timeline and the actions this person may take.

Every action is a form posted here and sent to the ops API with the person's own token, so it
lands on the case timeline with them as the actor; then back to the page (post/redirect/get).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from hotline.contracts.labels import Category, District, Priority
from hotline.logging import get_logger
from hotline_console import i18n, metrics
from hotline_console.auth import Session, case_permissions
from hotline_console.web import (
    console_of,
    flash,
    form_with_csrf,
    lang_of,
    ops_post,
    render,
    require_session,
)

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

CaseId = Path(pattern=r"^[A-Z]{2,6}-\d{8}-\d{4,}$")
DEADLINES_MIN = (30, 60, 120, 240, 480, 1440, 4320)


async def _case(request: Request, session: Session, case_id: str) -> dict[str, Any]:
    case: dict[str, Any] = await console_of(request).dispatcher.get(
        f"/cases/{case_id}", session.caller
    )
    return case


def _context(
    case: dict[str, Any], session: Session, units: list[dict[str, Any]], lang: str
) -> dict[str, Any]:
    reports = case.get("reports") or []
    opening = reports[0]["event_id"] if reports else None
    names = {u["unit_id"]: u["name_en"] if lang == "en" else u["name_vi"] for u in units}
    return {
        "case": case,
        "unit_names": names,
        "can": case_permissions(session.identity, case),
        "timeline": case.get("timeline") or [],
        "splittable": [r for r in reports if r["event_id"] != opening],
    }


@router.get("/cases/{case_id}")
async def case_page(request: Request, case_id: str = CaseId) -> Response:
    session = require_session(request)
    console = console_of(request)
    case, units = await asyncio.gather(
        _case(request, session, case_id), console.units(session.caller)
    )
    context = _context(case, session, units, lang_of(request))
    people: list[dict[str, Any]] = []
    if "reassign" in context["can"]:
        people = await console.dispatcher.get("/people", session.caller)
    return render(
        request,
        "case.html",
        {
            **context,
            "units": units,
            "people": people,
            "deadlines": DEADLINES_MIN,
            "categories": [c.value for c in Category],
            "priorities": [p.value for p in Priority],
            "districts": [d.value for d in District],
        },
        session=session,
    )


@router.get("/cases/{case_id}/live")
async def case_live(request: Request, case_id: str = CaseId) -> Response:
    """The parts of the page that change on their own: the header and the timeline."""
    session = require_session(request)
    case, units = await asyncio.gather(
        _case(request, session, case_id), console_of(request).units(session.caller)
    )
    context = _context(case, session, units, lang_of(request))
    return render(request, "_case_live.html", context, session=session)


def _body(action: str, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The ops API path (under the case) and JSON body for a console action."""
    note = form.get("note", "").strip() or None
    if action == "acknowledge":
        return "acknowledge", {"note": note}
    if action == "resolve":
        return "resolve", {"outcome": form.get("outcome", "").strip()}
    if action == "close":
        return "close", {"note": note}
    if action == "reopen":
        return "reopen", {"reason": form.get("reason", "").strip()}
    if action == "note":
        return "notes", {"text": form.get("text", "").strip()}
    if action == "reassign":
        person = form.get("person_id") or None
        unit = form.get("unit_id") or None
        return "reassign", {
            "unit_id": None if person else unit,
            "person_id": person,
            "reason": form.get("reason", "").strip(),
        }
    if action == "directive":
        minutes = int(form.get("due_in_minutes") or DEADLINES_MIN[3])
        return "directives", {"text": form.get("text", "").strip(), "due_in_minutes": minutes}
    if action == "report_directive":
        return f"directives/{form.get('directive_id', '')}/report", {
            "text": form.get("text", "").strip()
        }
    if action == "correct":
        body: dict[str, Any] = {"reason": form.get("reason", "").strip()}
        for name in ("category", "priority"):
            if form.get(name):
                body[name] = form[name]
        if "location" in form:
            body["location"] = form["location"] or None
        return "triage", body
    if action == "merge":
        return "merge", {"into": form.get("into", "").strip().upper(), "reason": _reason(form)}
    if action == "split":
        return "split", {"event_id": form.get("event_id", ""), "reason": _reason(form)}
    if action == "callback_done":
        return "callback-done", {"reached": form.get("reached") == "yes", "note": note}
    raise KeyError(action)


def _reason(form: dict[str, str]) -> str:
    return form.get("reason", "").strip()


NEXT_PAGE: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "merge": lambda case_id, result: f"/cases/{result.get('case_id', case_id)}",
    "split": lambda case_id, result: f"/cases/{result.get('case_id', case_id)}",
}


@router.post("/cases/{case_id}/act/{action}")
async def act(request: Request, action: str, case_id: str = CaseId) -> Response:
    session = require_session(request)
    form = await form_with_csrf(request, session)
    lang = lang_of(request)
    try:
        path, body = _body(action, form)
    except (KeyError, ValueError):
        metrics.ACTIONS.labels("unknown", "rejected").inc()
        flash(session, "error", i18n.text("error.not_found", lang))
        return RedirectResponse(f"/cases/{case_id}", status_code=303)
    target = f"/cases/{case_id}"
    result, failed = await ops_post(
        request, session, action, f"/cases/{case_id}/{path}", body, back=target
    )
    if failed is not None:
        return failed
    log.info("case action", extra={"case_id": case_id, "action": action})
    flash(session, "ok", i18n.text("case.done", lang))
    if action in NEXT_PAGE and isinstance(result, dict):
        target = NEXT_PAGE[action](case_id, result)
    return RedirectResponse(target, status_code=303)
