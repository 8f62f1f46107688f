"""Ops API endpoints the Staff Office console needs (same tokens, roles and errors as `api`).

* `/messages` — every inbound message as decided (greetings included), newest first, for the
  live queue, the greeting count and search; `/messages/{id}/logged` attributes a call logged
  at the desk to the person who logged it; `/messages/{id}/triage` corrects a message that has
  no case (training data; a greeting corrected into a report gets its case).
* `/cases/{id}/triage`, `/merge`, `/split` — triage correction, merging two cases, splitting a
  report off into a case of its own.
* `/corrections/export` — the corrections as the classifier's JSONL training format.
* `/shift-overrides` — on-call overrides made by the Staff Office at run time.
* `/people` — the members of a unit (to pick someone for a shift override or a reassignment).
* `/board` — open and unacknowledged cases per unit and per person, for the on-call board.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from hotline.clock import ensure_utc
from hotline.contracts.events import Actor
from hotline.contracts.labels import Category, Channel, District, Priority
from hotline.privacy import mask_text
from hotline_dispatcher.api import (
    CASE_ID_PATTERN,
    ROLE_RANK,
    CallTaker,
    CaseId,
    CaseSummary,
    Officer,
    PersonOut,
    ReporterOut,
    Staff,
    Viewer,
    _person,
    _reporter,
    _summary,
    acting,
    actor,
    case_action,
    ctx,
    text_query,
)
from hotline_dispatcher.cases import CaseState
from hotline_dispatcher.config import Organisation
from hotline_dispatcher.corrections import export_jsonl
from hotline_dispatcher.flows import summary_of
from hotline_dispatcher.overrides import InvalidOverride
from hotline_dispatcher.repository import Repository
from hotline_dispatcher.settings import ApiIdentity

EventId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:~-]+$")]

# --------------------------------------------------------------------------- models


class MessageOut(BaseModel):
    event_id: str
    at: datetime
    channel: str
    kind: str
    action: str = Field(description="new_case, merged, followup, callback, greeting, ...")
    category: Category
    priority: Priority
    location: District | None = None
    unit: str | None = None
    case_id: str | None = None
    summary: str
    text: str | None = None
    reporter: ReporterOut | None = None
    logged_by: str | None = None


class MessageList(BaseModel):
    items: list[MessageOut]


class TriageCorrection(BaseModel):
    """The fields to set; a field left out keeps its value (`location: null` = no district)."""

    category: Category | None = None
    priority: Priority | None = None
    location: District | None = None
    actionable: bool | None = None
    reason: str = Field(min_length=1, max_length=2000)

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("category", "priority", "location", "actionable"):
            if name in self.model_fields_set:
                value = getattr(self, name)
                if value is None and name != "location":
                    continue
                out[name] = value.value if hasattr(value, "value") else value
        return out

    @model_validator(mode="after")
    def _something(self) -> TriageCorrection:
        if not self.changes():
            raise ValueError("give at least one of category, priority, location, actionable")
        return self


class CorrectionOut(BaseModel):
    correction_id: str
    message_id: str
    case_id: str | None
    opened_case: str | None = Field(
        default=None, description="the case this correction opened (a greeting that was a report)"
    )
    before: dict[str, Any]
    after: dict[str, Any]
    by: Actor
    reason: str
    at: datetime


class MergeRequest(BaseModel):
    into: str = Field(pattern=CASE_ID_PATTERN, description="the case that stays")
    reason: str = Field(min_length=1, max_length=2000)


class SplitRequest(BaseModel):
    event_id: str = Field(min_length=1, max_length=128, description="the report to split off")
    reason: str = Field(min_length=1, max_length=2000)


class ShiftOverrideRequest(BaseModel):
    unit_id: str
    duty: Literal["officer", "call_taker", "staff_leader", "commander", "director"] = "officer"
    person_id: str
    replaces_id: str | None = Field(default=None, description="the person taken off, if any")
    start: AwareDatetime | None = Field(default=None, description="default: now")
    end: AwareDatetime | None = None
    hours: float | None = Field(default=None, gt=0, le=24 * 14, description="instead of end")
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _window(self) -> ShiftOverrideRequest:
        if self.end is None and self.hours is None:
            raise ValueError("give end or hours")
        return self


class ShiftOverrideOut(BaseModel):
    override_id: str
    unit_id: str
    duty: str
    person_id: str
    person_name: str | None
    replaces_id: str | None
    replaces_name: str | None
    start: datetime
    end: datetime
    reason: str
    by: Actor
    at: datetime
    active: bool = Field(description="in force now")
    cancelled_at: datetime | None = None


class BoardCounts(BaseModel):
    open: int = 0
    unacknowledged: int = Field(default=0, description="new or assigned: nobody took it yet")
    overdue: int = Field(default=0, description="unacknowledged past the priority's timeout")
    p1_unacknowledged: int = 0


class BoardOut(BaseModel):
    at: datetime
    units: dict[str, BoardCounts]
    people: dict[str, BoardCounts]


# --------------------------------------------------------------------------- shaping


def may_see_message(
    identity: ApiIdentity, doc: dict[str, Any], held: frozenset[str] = frozenset()
) -> bool:
    """As for cases (`api.may_see_reporter`): staff and above; officers for their unit;
    call-takers for callbacks and for the cases assigned to them (`held`)."""
    if ROLE_RANK[identity.role] >= ROLE_RANK["staff"]:
        return True
    if identity.role == "call_taker":
        return doc.get("action") == "callback" or doc.get("case_id") in held
    return (
        identity.role == "officer"
        and identity.unit is not None
        and doc.get("unit") == (identity.unit)
    )


def message_out(
    doc: dict[str, Any], identity: ApiIdentity, held: frozenset[str] = frozenset()
) -> MessageOut:
    see = may_see_message(identity, doc, held)
    text = doc.get("text")
    summary = summary_of(doc)
    return MessageOut(
        event_id=str(doc["_id"]),
        at=doc["at"],
        channel=str(doc.get("channel")),
        kind=str(doc.get("kind")),
        action=str(doc.get("action")),
        category=doc["category"],
        priority=doc["priority"],
        location=doc.get("location"),
        unit=doc.get("unit"),
        case_id=doc.get("case_id"),
        summary=summary if see else mask_text(summary),
        text=(text if see else mask_text(text)) if text is not None else None,
        reporter=_reporter(doc["reporter"], see) if doc.get("reporter") else None,
        logged_by=doc.get("logged_by"),
    )


async def held_cases(repo: Repository, identity: ApiIdentity) -> frozenset[str]:
    """A call-taker's cases (whose messages they see unmasked); nobody else needs the read."""
    if identity.role != "call_taker":
        return frozenset()
    return frozenset(await repo.case_ids_assigned_to(identity.id))


def correction_out(doc: dict[str, Any]) -> CorrectionOut:
    return CorrectionOut(
        correction_id=str(doc["_id"]),
        message_id=str(doc["message_id"]),
        case_id=doc.get("case_id"),
        opened_case=doc.get("opened_case"),
        before=doc["before"],
        after=doc["after"],
        by=doc["by"],
        reason=str(doc["reason"]),
        at=doc["at"],
    )


def override_out(doc: dict[str, Any], org: Organisation, now: datetime) -> ShiftOverrideOut:
    start, end = ensure_utc(doc["start"]), ensure_utc(doc["end"])
    person = org.people.get(str(doc["person_id"]))
    replaced = org.people.get(str(doc.get("replaces_id"))) if doc.get("replaces_id") else None
    return ShiftOverrideOut(
        override_id=str(doc["_id"]),
        unit_id=str(doc["unit_id"]),
        duty=str(doc["duty"]),
        person_id=str(doc["person_id"]),
        person_name=person.name if person else None,
        replaces_id=doc.get("replaces_id"),
        replaces_name=replaced.name if replaced else None,
        start=start,
        end=end,
        reason=str(doc.get("reason") or ""),
        by=doc["by"],
        at=doc["at"],
        active=doc.get("cancelled_at") is None and start <= now < end,
        cancelled_at=doc.get("cancelled_at"),
    )


def board_counts(
    docs: list[dict[str, Any]], timeouts_s: dict[Priority, int], now: datetime
) -> tuple[dict[str, BoardCounts], dict[str, BoardCounts]]:
    """Open cases per unit and per assignee (pure)."""
    units: dict[str, BoardCounts] = {}
    people: dict[str, BoardCounts] = {}
    for doc in docs:
        state = str(doc.get("state"))
        unacked = state in (CaseState.NEW.value, CaseState.ASSIGNED.value)
        priority = Priority(str(doc.get("priority")))
        overdue = False
        if unacked and doc.get("assigned_at") is not None:
            timeout = timeouts_s.get(priority)
            overdue = bool(timeout) and ensure_utc(doc["assigned_at"]) < now - timedelta(
                seconds=timeout or 0
            )
        targets = [units.setdefault(str(doc.get("responsible_unit")), BoardCounts())]
        pid = (doc.get("assignee") or {}).get("person_id")
        if pid:
            targets.append(people.setdefault(str(pid), BoardCounts()))
        for counts in targets:
            counts.open += 1
            counts.unacknowledged += unacked
            counts.overdue += overdue
            counts.p1_unacknowledged += unacked and priority == Priority.P1
    return units, people


# --------------------------------------------------------------------------- router


def build_console_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get(
        "/messages",
        response_model=MessageList,
        tags=["messages"],
        summary="Inbound messages as decided, newest first (greetings included)",
    )
    async def list_messages(
        request: Request,
        identity: Viewer,
        action: Annotated[list[str] | None, Query()] = None,
        channel: Annotated[list[Channel] | None, Query()] = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        since: AwareDatetime | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> MessageList:
        _, repo, _ = ctx(request)
        query: dict[str, Any] = {"action": {"$ne": "acknowledgement"}}
        if action:
            query["action"] = {"$in": action}
        if channel:
            query["channel"] = {"$in": [c.value for c in channel]}
        if since:
            query["at"] = {"$gte": ensure_utc(since)}
        if q and q.strip():
            query.update(text_query(q, identity))
        docs = await repo.recent_decisions(query, limit)
        held = await held_cases(repo, identity)
        return MessageList(items=[message_out(d, identity, held) for d in docs])

    @router.get(
        "/messages/{event_id}",
        response_model=MessageOut,
        tags=["messages"],
        summary="One message as decided (404 until the dispatcher decided it)",
    )
    async def get_message(request: Request, event_id: EventId, identity: Viewer) -> MessageOut:
        _, repo, _ = ctx(request)
        doc = await repo.get_decision(event_id)
        if doc is None:
            raise HTTPException(404, f"no message {event_id} (yet)")
        return message_out(doc, identity, await held_cases(repo, identity))

    @router.post(
        "/messages/{event_id}/logged",
        response_model=MessageOut,
        tags=["messages"],
        summary="Attribute a call logged at the desk to the caller of this endpoint",
    )
    async def log_call(request: Request, event_id: EventId, identity: CallTaker) -> MessageOut:
        service, repo, org = ctx(request)
        doc = await service.log_call(event_id, actor(org, identity))
        return message_out(doc, identity, await held_cases(repo, identity))

    @router.post(
        "/messages/{event_id}/triage",
        response_model=CorrectionOut,
        status_code=201,
        tags=["corrections"],
        summary="Correct the triage of a message without a case (training data; a message made "
        "actionable gets its case, routed and alerted)",
    )
    async def correct_message(
        request: Request, event_id: EventId, identity: Staff, body: TriageCorrection
    ) -> CorrectionOut:
        service, _, org = ctx(request)
        who = actor(org, identity)
        doc = await service.correct_message(event_id, who, body.changes(), body.reason)
        return correction_out(doc)

    @case_action(
        router,
        "/cases/{case_id}/triage",
        "Correct the triage (category, priority, location); kept as training data",
    )
    async def correct_case(
        request: Request, case_id: CaseId, identity: Officer, body: TriageCorrection
    ) -> CaseSummary:
        service, who = await acting(request, case_id, identity, "correct")
        doc = await service.correct_triage(case_id, who, body.changes(), body.reason)
        return _summary(doc)

    @router.get(
        "/corrections/export",
        tags=["corrections"],
        summary="Corrections in the classifier's JSONL training format",
        response_class=Response,
        responses={200: {"content": {"application/x-ndjson": {}}}},
    )
    async def export_corrections(
        request: Request, identity: Staff, since: AwareDatetime | None = None
    ) -> Response:
        _, repo, _ = ctx(request)
        body = export_jsonl(await repo.corrections(ensure_utc(since) if since else None))
        return Response(
            body,
            media_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="corrections.jsonl"'},
        )

    @router.get(
        "/corrections",
        response_model=list[CorrectionOut],
        tags=["corrections"],
        summary="Corrections, oldest first",
    )
    async def list_corrections(request: Request, identity: Staff) -> list[CorrectionOut]:
        _, repo, _ = ctx(request)
        return [correction_out(d) for d in await repo.corrections()]

    @case_action(
        router,
        "/cases/{case_id}/merge",
        "Merge this case into another (reports move, this one is closed)",
    )
    async def merge(
        request: Request, case_id: CaseId, identity: Staff, body: MergeRequest
    ) -> CaseSummary:
        service, _, org = ctx(request)
        return _summary(await service.merge(case_id, body.into, actor(org, identity), body.reason))

    @case_action(
        router,
        "/cases/{case_id}/split",
        "Split one report off into a case of its own (answers the new case)",
        status_code=201,
    )
    async def split(
        request: Request, case_id: CaseId, identity: Staff, body: SplitRequest
    ) -> CaseSummary:
        service, _, org = ctx(request)
        doc = await service.split(case_id, body.event_id, actor(org, identity), body.reason)
        return _summary(doc)

    @router.get(
        "/shift-overrides",
        response_model=list[ShiftOverrideOut],
        tags=["organisation"],
        summary="Run-time shift overrides that are not over (or cancelled)",
    )
    async def list_overrides(request: Request, identity: Viewer) -> list[ShiftOverrideOut]:
        service, repo, org = ctx(request)
        now = service.clock.now()
        return [override_out(d, org, now) for d in await repo.shift_overrides(ending_after=now)]

    @router.post(
        "/shift-overrides",
        response_model=ShiftOverrideOut,
        status_code=201,
        tags=["organisation"],
        summary="Put a person on call (in someone's place, or in addition) for a time window",
    )
    async def add_override(
        request: Request, identity: Staff, body: ShiftOverrideRequest
    ) -> ShiftOverrideOut:
        service, _, org = ctx(request)
        now = service.clock.now()
        start = ensure_utc(body.start) if body.start else now
        end = ensure_utc(body.end) if body.end else start + timedelta(hours=body.hours or 0)
        try:
            doc = await service.add_shift_override(
                actor(org, identity),
                body.unit_id,
                body.duty,
                body.person_id,
                body.replaces_id,
                start,
                end,
                body.reason,
            )
        except InvalidOverride as exc:
            raise HTTPException(422, str(exc)) from exc
        return override_out(doc, org, now)

    @router.delete(
        "/shift-overrides/{override_id}",
        response_model=ShiftOverrideOut,
        tags=["organisation"],
        summary="Cancel a shift override",
    )
    async def cancel_override(
        request: Request, override_id: EventId, identity: Staff
    ) -> ShiftOverrideOut:
        service, _, org = ctx(request)
        doc = await service.cancel_shift_override(override_id, actor(org, identity))
        return override_out(doc, org, service.clock.now())

    @router.get(
        "/people",
        response_model=list[PersonOut],
        tags=["organisation"],
        summary="The members of a unit (contacts for staff and above)",
    )
    async def people(
        request: Request, identity: Viewer, unit: str | None = None
    ) -> list[PersonOut]:
        _, _, org = ctx(request)
        if unit is not None and unit not in org.units:
            raise HTTPException(404, f"no unit {unit}")
        show = ROLE_RANK[identity.role] >= ROLE_RANK["staff"]
        return [_person(p, show) for p in org.people.values() if unit is None or p.unit_id == unit]

    @router.get(
        "/board",
        response_model=BoardOut,
        tags=["organisation"],
        summary="Open, unacknowledged and overdue cases per unit and per person",
    )
    async def board(request: Request, identity: Viewer) -> BoardOut:
        service, repo, org = ctx(request)
        now = service.clock.now()
        units, people = board_counts(await repo.open_cases(), org.routing.timeouts_s, now)
        return BoardOut(at=now, units=units, people=people)

    return router
