"""Directives (chỉ đạo): every directive of the Director, or of the Staff Office on his behalf,
still waiting for its unit's report-back, the longest overdue first, and the latest reported.

This is the loop the Director keeps by hand today (who was told to do what, by when, and who
has not answered): one page for him and the Staff Office, refreshed when a case event arrives
(a directive recorded or reported, a reminder). Reporting back is done on the case page, where
the unit sees the whole case.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hotline.clock import LOCAL_TZ, ensure_utc
from hotline_console import charts
from hotline_console.auth import Session
from hotline_console.web import console_of, lang_of, render, require_session

router = APIRouter(include_in_schema=False)

OPEN_SHOWN = 500  # the ops API's largest page; a province has tens open at a time
REPORTED_SHOWN = 30


def directive_lists(
    waiting: list[dict[str, Any]],
    reported: list[dict[str, Any]],
    units: list[dict[str, Any]],
    now: datetime,
    lang: str,
) -> dict[str, Any]:
    """The page's lists (pure), in the ops API's order (open by deadline, reported latest
    first), each directive with its unit's name and `late`/`gap`: for an open one, whether
    the dispatcher counts it overdue and how long until (or since) its deadline; for a
    reported one, whether the report came after the deadline and by how much (or how early)."""
    names = {u["unit_id"]: u["name_en"] if lang == "en" else u["name_vi"] for u in units}

    def at(value: str) -> datetime:
        return ensure_utc(datetime.fromisoformat(value))

    def shown(d: dict[str, Any], late: bool, seconds: float) -> dict[str, Any]:
        unit = names.get(d["unit"], d["unit"])
        return {**d, "unit_name": unit, "late": late, "gap": charts.duration(seconds, lang)}

    items = [
        shown(d, bool(d["overdue"]), abs((at(d["deadline"]) - now).total_seconds()))
        for d in waiting
    ]
    done = []
    for d in reported:
        after = (at(d.get("reported_at") or d["deadline"]) - at(d["deadline"])).total_seconds()
        done.append(shown(d, after > 0, abs(after)))
    return {"waiting": items, "overdue": sum(1 for d in items if d["late"]), "reported": done}


async def directives_data(request: Request, session: Session, unit: str | None) -> dict[str, Any]:
    console = console_of(request)
    base = {"unit": unit} if unit else {}
    waiting, reported, units = await asyncio.gather(
        console.dispatcher.get(
            "/directives", session.caller, {**base, "state": "open", "limit": OPEN_SHOWN}
        ),
        console.dispatcher.get(
            "/directives", session.caller, {**base, "state": "reported", "limit": REPORTED_SHOWN}
        ),
        console.units(session.caller),
    )
    now = datetime.now(LOCAL_TZ)
    return {
        **directive_lists(waiting, reported, units, now, lang_of(request)),
        "units": units,
        "unit": unit or "",
    }


def _unit(request: Request) -> str | None:
    value = request.query_params.get("unit", "").strip()
    return value[:64] or None


@router.get("/directives")
async def directives_page(request: Request) -> Response:
    session = require_session(request)
    data = await directives_data(request, session, _unit(request))
    return render(request, "directives.html", data, session=session)


@router.get("/directives/live")
async def directives_live(request: Request) -> Response:
    session = require_session(request)
    data = await directives_data(request, session, _unit(request))
    return render(request, "_directive_lists.html", data, session=session)
