"""Today (hôm nay): the day's figures as the Director reports them, with inline SVG charts."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hotline.clock import LOCAL_TZ
from hotline_console import charts, i18n
from hotline_console.clients import ApiError
from hotline_console.web import console_of, lang_of, render, require_session

router = APIRouter(include_in_schema=False)


def _sorted(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def figures(stats: dict[str, Any], units: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    """The charts and tables of the Today page (pure)."""
    unit_names = {u["unit_id"]: (u["name_en"] if lang == "en" else u["name_vi"]) for u in units}
    by_channel = {k: v["messages"] for k, v in (stats.get("by_channel") or {}).items()}
    hours = [(h["reports"], h["greetings"]) for h in stats.get("by_hour") or []]
    acks = stats.get("time_to_acknowledge") or {}
    return {
        "channel_chart": charts.bars(
            [(i18n.label("channel", k, lang), v) for k, v in _sorted(by_channel)],
            title=i18n.text("today.by_channel", lang),
        ),
        "category_chart": charts.bars(
            [(i18n.label("category", k, lang), v) for k, v in _sorted(stats["by_category"])],
            title=i18n.text("today.by_category", lang),
            css="bar-report",
        ),
        "district_chart": charts.bars(
            [
                (i18n.label("district", k, lang), v)
                for k, v in _sorted(stats.get("by_district", {}))
            ],
            title=i18n.text("today.by_district", lang),
            css="bar-report",
        ),
        "places_chart": charts.bars(
            [
                (f"{p['locality']} · {i18n.label('district', p['location'], lang)}", p["reports"])
                for p in stats.get("top_places") or []
            ],
            title=i18n.text("today.top_places", lang),
            css="bar-report",
            label_width=240,
            width=460,
        )
        if stats.get("top_places")
        else None,
        "unit_chart": charts.bars(
            [(unit_names.get(k, k), v) for k, v in _sorted(stats["by_unit"])],
            title=i18n.text("today.by_unit", lang),
            label_width=200,
            width=420,
        ),
        "hour_chart": charts.hours(
            hours,
            title=i18n.text("today.by_hour", lang),
            legend=(i18n.text("today.reports", lang), i18n.text("today.greetings", lang)),
        ),
        "ack_chart": charts.bars(
            [
                (p, round(a["median_s"] / 60, 1))
                for p, a in sorted(acks.items())
                if a.get("median_s") is not None
            ],
            title=i18n.text("today.ack", lang),
            unit=" min",
            css="bar-ack",
        ),
        "acks": sorted(acks.items()),
        "duration": lambda s: charts.duration(s, lang),
        "director_line": i18n.text("today.director_line", lang).format(
            messages=stats["messages"], reports=stats["reports"], greetings=stats["greetings"]
        ),
    }


@router.get("/today")
async def today(request: Request, day: str | None = None) -> Response:
    session = require_session(request)
    console = console_of(request)
    chosen: date | None = None
    if day:
        try:
            chosen = date.fromisoformat(day)
        except ValueError:
            chosen = None
    params = {"date": chosen.isoformat()} if chosen else None
    stats, units = await asyncio.gather(
        console.dispatcher.get("/stats/daily", session.caller, params),
        console.units(session.caller),
    )
    lang = lang_of(request)
    return render(
        request,
        "today.html",
        {
            "stats": stats,
            **figures(stats, units, lang),
            "day": stats["date"],
            "today": datetime.now(LOCAL_TZ).date().isoformat(),
            "may_export": session.identity.at_least("staff"),
        },
        session=session,
    )


@router.get("/today/corrections.jsonl")
async def corrections(request: Request) -> Response:
    """The triage corrections as the classifier's training format (staff and above)."""
    session = require_session(request)
    try:
        body = await console_of(request).dispatcher.get("/corrections/export", session.caller)
    except ApiError as exc:
        return Response(exc.detail, status_code=exc.status, media_type="text/plain")
    return Response(
        body if isinstance(body, bytes) else b"",
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="corrections.jsonl"'},
    )
