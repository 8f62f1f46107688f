"""The live queue (hàng đợi): open cases, urgent ones pinned, greetings as a count; the SSE
stream every page listens to."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, time
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from hotline.clock import LOCAL_TZ
from hotline.contracts.labels import Category, District, Priority
from hotline.logging import get_logger
from hotline_console import i18n
from hotline_console.auth import Session
from hotline_console.clients import ApiError, Caller
from hotline_console.live import stream
from hotline_console.queue import QueueFilters, arrange, load_page
from hotline_console.web import (
    Console,
    SignInRequired,
    console_of,
    end_session,
    flash,
    form_with_csrf,
    lang_of,
    ops_post,
    render,
    require_session,
)

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)


def _filters(request: Request) -> QueueFilters:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return QueueFilters.parse(params)


def local_midnight() -> str:
    now = datetime.now(LOCAL_TZ)
    return datetime.combine(now.date(), time(0), tzinfo=LOCAL_TZ).isoformat()


async def queue_data(console: Console, caller: Caller, filters: QueueFilters) -> dict[str, Any]:
    """Everything the queue fragment shows, fetched in parallel for the person."""
    dispatcher = console.dispatcher

    async def cases(priorities: list[str], offset: int, limit: int) -> dict[str, Any]:
        params = [*filters.api_params(priorities), ("limit", str(limit)), ("offset", str(offset))]
        found: dict[str, Any] = await dispatcher.get("/cases", caller, params)
        return found

    calls: list[Any] = [
        load_page(cases, filters, console.settings.queue_page_size),
        # Pinned whatever the filters and the page (200: the most the ops API lists at once).
        dispatcher.get(
            "/cases",
            caller,
            [("priority", "P1"), ("state", "new"), ("state", "assigned"), ("limit", "200")],
        ),
        dispatcher.get("/stats/daily", caller),
    ]
    if filters.q:
        params = [("q", filters.q), ("limit", "30")]
        since = filters.messages_since(datetime.now(LOCAL_TZ))
        if since is not None:
            params.append(("since", since))
        calls.append(dispatcher.get("/messages", caller, params))
    results = await asyncio.gather(*calls)
    page, urgent, stats = results[0], results[1], results[2]
    pinned, rest = arrange(urgent["items"], page.items)
    messages = results[3]["items"] if filters.q else []
    return {
        "pinned": pinned,
        "cases": rest,
        "page": page,
        "stats": stats,
        "messages": [m for m in messages if m.get("action") not in ("new_case", "callback")],
        "filters": filters,
        "updated": datetime.now(LOCAL_TZ).strftime("%H:%M:%S"),
    }


@router.get("/")
async def queue_page(request: Request) -> Response:
    session = require_session(request)
    console = console_of(request)
    filters = _filters(request)
    data, units = await asyncio.gather(
        queue_data(console, session.caller, filters), console.units(session.caller)
    )
    return render(request, "queue.html", {**data, "units": units}, session=session)


@router.get("/queue/items")
async def queue_items(request: Request) -> Response:
    session = require_session(request)
    data = await queue_data(console_of(request), session.caller, _filters(request))
    return render(request, "_queue_items.html", data, session=session)


@router.get("/queue/greeting-count")
async def greeting_count(request: Request) -> Response:
    session = require_session(request)
    stats = await console_of(request).dispatcher.get("/stats/daily", session.caller)
    return render(request, "_greeting_count.html", {"stats": stats}, session=session)


@router.get("/greetings")
async def greetings(request: Request) -> Response:
    """Today's greetings, shown when the collapsed count is opened."""
    session = require_session(request)
    console = console_of(request)
    try:
        found = await console.dispatcher.get(
            "/messages",
            session.caller,
            [("action", "greeting"), ("since", local_midnight()), ("limit", "200")],
        )
    except ApiError as exc:
        return Response(exc.detail, status_code=exc.status)
    return render(
        request,
        "_greetings.html",
        {
            "messages": found["items"],
            # The Staff Office may say "this greeting is a report": the message gets its case.
            "may_correct": session.identity.at_least("staff"),
            "categories": [c.value for c in Category if c != Category.GREETING],
            "priorities": [p.value for p in Priority],
            "districts": [d.value for d in District],
        },
        session=session,
    )


EventId = Path(pattern=r"^[0-9A-Za-z-]{8,64}$")


@router.post("/messages/{event_id}/correct")
async def correct_message(request: Request, event_id: str = EventId) -> Response:
    """A greeting that was a report: the correction is kept as training data and the message
    gets its case (routed, assigned, alerted by the dispatcher); the page goes to that case."""
    session = require_session(request)
    form = await form_with_csrf(request, session)
    lang = lang_of(request)
    body: dict[str, Any] = {"reason": form.get("reason", "").strip()}
    for name in ("category", "priority"):
        if form.get(name):
            body[name] = form[name]
    body["location"] = form.get("location") or None
    result, failed = await ops_post(
        request, session, "correct_message", f"/messages/{event_id}/triage", body, back="/"
    )
    if failed is not None:
        return failed
    log.info("message corrected", extra={"event_id": event_id})
    opened = result.get("opened_case") if isinstance(result, dict) else None
    if opened:
        flash(session, "ok", i18n.text("queue.report_opened", lang))
        return RedirectResponse(f"/cases/{opened}", status_code=303)
    flash(session, "ok", i18n.text("case.done", lang))
    return RedirectResponse("/", status_code=303)


async def session_holds(console: Console, session: Session) -> bool:
    """False once the session has ended: signed out here or past its maximum age, or refused
    by the dispatcher (signed out on another replica, token revoked; this replica then refuses
    it too). An unreachable dispatcher is no answer: the stream goes on (it carries no data,
    and the pages it triggers ask the dispatcher themselves)."""
    if console.sessions.ended(session):
        return False
    try:
        await console.dispatcher.get("/me", session.caller)
    except ApiError as exc:
        if exc.status == 401:
            console.sessions.end(session)
            return False
        log.warning("live stream: session not checked", extra={"status": exc.status})
    return True


@router.get("/events")
async def events(request: Request, case: str | None = None) -> Response:
    """Server-sent events: `changed` (queue, board, today) or `case` (one case page, delivery
    outcomes included).

    The stream never re-issues the session cookie (`refresh=False`): it reconnects by itself
    every few minutes, which is not the person's activity, and its headers go out once for a
    long-lived response. The fragments it triggers re-fetch with the cookie and count.

    The session is asked of the dispatcher when the stream opens and every
    `CONSOLE_LIVE_SESSION_CHECK_S` while it runs (`session_holds`), so a session signed out on
    another replica, or whose token was revoked, stops receiving within that time."""
    session = require_session(request, refresh=False)
    console = console_of(request)
    settings = console.settings
    if not await session_holds(console, session):
        end_session(request, session)
        raise SignInRequired()

    body = stream(
        console.broadcaster,
        case_id=case,
        coalesce_s=settings.live_coalesce_ms / 1000,
        heartbeat_s=settings.sse_heartbeat_s,
        recheck_s=settings.delivery_recheck_ms / 1000,
        session_check=functools.partial(session_holds, console, session),
        session_check_s=settings.live_session_check_s,
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
