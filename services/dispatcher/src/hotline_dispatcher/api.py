"""The ops API under /api/v1: cases, timelines, directives, on-call, daily statistics.

Bearer tokens map to an identity with a role (`DISPATCHER_API_TOKENS`):

* viewer — read cases (reporters' contacts masked), on-call, statistics;
* call_taker — the Director's desk (tổ giúp việc): also see the caller's number on callback
  tasks, record a callback and add notes to them, attribute a logged call to themselves; and on
  a case assigned to them (a report the Staff Office decides: no place or no rule) see the
  reporter, acknowledge, add notes and forward it to a unit (reassign by `unit_id`);
* officer — also acknowledge, resolve, add notes, report back on directives, record a callback,
  correct the triage, on cases of their own unit, assigned to them or whose escalation chain
  they are on (reporters visible on those);
* staff — all of that on any case, plus reassign, close, reopen and add directives (the Staff
  Office acts on the Director's behalf);
* director, admin — as staff. A directive the Director records is his own
  (`issued_by: director`); one recorded by anyone else is the Staff Office's on his behalf
  (`staff_office`), and the unit's notice says which.

A request made for a console session names it (`X-Hotline-Session`); once the console has
signed that session out (`POST /session/sign-out`), its requests are 401 on every replica.

Errors are JSON `{"error", "detail"}`: 401 without a valid token (or for a signed-out
session), 403 for a role or unit that may not do it, 404 for an unknown case (a path id not
shaped like a case id too), 409 (with `"state"`, the case's current state) for a transition
its state does not allow.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.types import DecoratedCallable
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from hotline.clock import ensure_utc
from hotline.contracts.events import Actor, Contact, DirectiveIssuer
from hotline.contracts.labels import Category, Channel, District, Priority
from hotline.http import SESSION_HEADER
from hotline.privacy import mask_address, mask_name, mask_phone, mask_text
from hotline_dispatcher.assignment import on_call, on_chain
from hotline_dispatcher.cases import OPEN_STATES, TRANSITIONS, CaseState, InvalidTransition
from hotline_dispatcher.config import Organisation, Person
from hotline_dispatcher.ops import (
    CaseConflict,
    CaseNotFound,
    CaseService,
    NotFound,
    directive_issuer,
)
from hotline_dispatcher.overrides import InvalidOverride
from hotline_dispatcher.repository import Repository
from hotline_dispatcher.settings import ApiIdentity, ApiRole
from hotline_dispatcher.stats import by_hour, fold_daily, time_to_acknowledge

ROLE_RANK: dict[str, int] = {
    "viewer": 0,
    "call_taker": 1,
    "officer": 2,
    "staff": 3,
    "director": 4,
    "admin": 5,
}
CASE_ID_PATTERN = r"^[A-Z]{2,6}-\d{8}-\d{4,}$"

# --------------------------------------------------------------------------- response models


class ActorOut(BaseModel):
    id: str
    role: str
    name: str | None = None


class AssigneeOut(BaseModel):
    person_id: str
    name: str
    rank: str | None = None
    role: str
    unit_id: str


class ReporterOut(BaseModel):
    channel: str
    address: str | None = None
    phone: str | None = None
    display_name: str | None = None
    language: str = "vi"
    masked: bool = Field(description="true when this caller may not see the contact")


class CaseSummary(BaseModel):
    case_id: str
    state: CaseState
    kind: Literal["report", "callback"]
    channel: str | None = Field(default=None, description="channel of the opening report")
    category: Category
    priority: Priority
    location: District | None
    locality: str | None = Field(
        default=None,
        description="the commune, ward or landmark inside the district that the opening report "
        "names (the classifier's gazetteer place)",
    )
    responsible_unit: str
    informed_units: list[str]
    assignee: AssigneeOut | None
    summary: str
    opened_at: datetime
    received_at: datetime
    assigned_at: datetime | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    updated_at: datetime
    version: int
    reopened_count: int = 0


class TimelineEntryOut(BaseModel):
    id: str
    at: datetime
    type: str
    actor: ActorOut
    text: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ReportOut(BaseModel):
    event_id: str
    at: datetime
    channel: str
    kind: str
    action: str
    category: Category
    priority: Priority
    reporter: ReporterOut


class DirectiveOut(BaseModel):
    directive_id: str
    case_id: str
    text: str
    by: ActorOut
    issued_by: DirectiveIssuer = Field(
        description="the Director's own directive, or the Staff Office's on his behalf"
    )
    at: datetime
    deadline: datetime
    state: Literal["open", "reported"]
    overdue: bool
    unit: str
    recipients: list[str]
    reported_at: datetime | None = None
    reported_by: ActorOut | None = None
    report: str | None = None


class CallbackOut(BaseModel):
    done_at: datetime | None = None
    by: ActorOut | None = None
    reached: bool | None = None


class CaseDetail(CaseSummary):
    text: str
    reporter: ReporterOut
    rule: str | None = None
    outcome: str | None = None
    acknowledged_by: ActorOut | None = None
    resolved_by: ActorOut | None = None
    callback: CallbackOut | None = None
    allowed_actions: list[str]
    timeline: list[TimelineEntryOut]
    reports: list[ReportOut]
    directives: list[DirectiveOut]


class CaseList(BaseModel):
    items: list[CaseSummary]
    total: int
    limit: int
    offset: int


class PersonOut(BaseModel):
    id: str
    name: str
    rank: str | None
    role: str
    unit_id: str
    title: str | None
    contacts: list[Contact] | None = Field(
        description="contact channels in preference order; null for viewers and officers"
    )


class DutyOut(BaseModel):
    duty: str
    people: list[PersonOut]


class OnCallUnit(BaseModel):
    unit_id: str
    code: str
    kind: str
    name_vi: str
    name_en: str
    commander: PersonOut
    duties: list[DutyOut]


class OnCallOut(BaseModel):
    at: datetime
    local_time: str
    units: list[OnCallUnit]


class UnitOut(BaseModel):
    unit_id: str
    code: str
    kind: str
    name_vi: str
    name_en: str
    jurisdiction: list[District]
    categories: list[Category]
    commander_id: str
    members: int


class ChannelStats(BaseModel):
    messages: int
    reports: int
    greetings: int


class AckStats(BaseModel):
    cases: int = Field(description="cases of this priority opened that day")
    acknowledged: int
    median_s: float | None = Field(description="median seconds from report to acknowledgement")


class PlaceCount(BaseModel):
    location: str = Field(description="district code")
    locality: str = Field(description="the commune, ward or landmark inside it")
    reports: int


class DailyStats(BaseModel):
    date: date
    messages: int = Field(description="citizens' messages and calls that day (local time)")
    reports: int = Field(description="messages that opened or joined a case, missed calls")
    greetings: int
    callbacks: int
    new_cases: int
    merged: int
    followups: int
    officer_replies: int
    cases_resolved: int
    by_channel: dict[str, ChannelStats]
    by_category: dict[str, int]
    by_unit: dict[str, int]
    by_priority: dict[str, int]
    by_district: dict[str, int] = Field(default_factory=dict, description="'unknown' = none")
    top_places: list[PlaceCount] = Field(
        default_factory=list,
        description="the ten communes, wards or landmarks most reports named, most first "
        "(where a flood or a festival hits hardest)",
    )
    by_hour: list[ChannelStats] = Field(
        default_factory=list, description="24 local hours: messages, reports, greetings"
    )
    time_to_acknowledge: dict[str, AckStats] = Field(
        default_factory=dict,
        description="per priority, cases opened that day (callback tasks left out)",
    )


class Me(BaseModel):
    id: str
    role: ApiRole
    unit: str | None
    name: str | None


# --------------------------------------------------------------------------- request models


class SignOutRequest(BaseModel):
    until: AwareDatetime = Field(description="when the session would have expired anyway")


class AcknowledgeRequest(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class ResolveRequest(BaseModel):
    outcome: str = Field(min_length=1, max_length=4000, description="what was done (kết quả)")


class CloseRequest(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class ReopenRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ReassignRequest(BaseModel):
    unit_id: str | None = None
    person_id: str | None = None
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _target(self) -> ReassignRequest:
        if self.unit_id is None and self.person_id is None:
            raise ValueError("give unit_id (its on-call officer is chosen) or person_id")
        return self


class NoteRequest(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class DirectiveRequest(BaseModel):
    text: str = Field(min_length=1, max_length=4000, description="the directive (chỉ đạo)")
    deadline: AwareDatetime | None = Field(
        default=None, description="report-back deadline; default from routing.yaml"
    )
    due_in_minutes: int | None = Field(default=None, gt=0, le=60 * 24 * 60)


class DirectiveReportRequest(BaseModel):
    text: str = Field(min_length=1, max_length=4000, description="the unit's report-back")


class CallbackDoneRequest(BaseModel):
    reached: bool = Field(description="whether the caller was reached")
    note: str | None = Field(default=None, max_length=2000)


# --------------------------------------------------------------------------- auth

_bearer = HTTPBearer(auto_error=False, description="an API token from DISPATCHER_API_TOKENS")


class Auth:
    def __init__(self, tokens: dict[str, ApiIdentity]) -> None:
        self.tokens = tokens

    def identify(self, credentials: HTTPAuthorizationCredentials | None) -> ApiIdentity:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        given = credentials.credentials.encode()
        found: ApiIdentity | None = None
        for token, identity in self.tokens.items():
            if hmac.compare_digest(given, token.encode()):
                found = identity
        if found is None:
            raise HTTPException(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
        return found


SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
SIGNED_OUT_MAX = timedelta(days=7)  # the longest a signed-out session is remembered


def require(role: ApiRole) -> Any:
    """A dependency: the caller's identity, if their role is at least `role`.

    A request on behalf of a console session names it (`X-Hotline-Session`); once that session
    has signed out, on whichever console replica, its requests are refused with a 401, so a
    copy of the signed-out cookie is useless on every replica."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        session: Annotated[
            str | None,
            Header(
                alias=SESSION_HEADER,
                pattern=SESSION_ID_PATTERN,
                description="the console session this request is made for (refused once it "
                "has signed out)",
            ),
        ] = None,
    ) -> ApiIdentity:
        auth: Auth = request.app.state.auth
        identity = auth.identify(credentials)
        if session is not None and await request.app.state.repo.session_signed_out(session):
            raise HTTPException(
                401, "this console session has signed out", headers={"WWW-Authenticate": "Bearer"}
            )
        if ROLE_RANK[identity.role] < ROLE_RANK[role]:
            raise HTTPException(
                403, f"role {identity.role} may not do this (needs {role} or above)"
            )
        return identity

    return Depends(dependency)


Viewer = Annotated[ApiIdentity, require("viewer")]
CallTaker = Annotated[ApiIdentity, require("call_taker")]
Officer = Annotated[ApiIdentity, require("officer")]
Staff = Annotated[ApiIdentity, require("staff")]
_CASE_ID = re.compile(CASE_ID_PATTERN)


def case_id_path(
    request: Request,
    case_id: Annotated[
        str, Path(description="a case id: prefix-YYYYMMDD-number", examples=["HUE-20240124-0042"])
    ],
    _caller: Viewer,
) -> str:
    """The `{case_id}` of a path. A string that is not shaped like a case id names no case:
    404 like any unknown case (with what is wrong with it), not a 422 for a malformed request.
    The caller is authenticated first, so a request without a valid token is a 401 whatever
    the id."""
    if _CASE_ID.fullmatch(case_id):
        return case_id
    org: Organisation = request.app.state.org
    example = f"{org.province.case_prefix}-20240124-0001"
    if _CASE_ID.fullmatch(case_id.upper()):
        problem = f"case ids are upper-case (did you mean {case_id.upper()}?)"
    else:
        problem = f"not a case id (expected like {example})"
    raise HTTPException(404, f"no case {case_id!r}: {problem}")


CaseId = Annotated[str, Depends(case_id_path)]


# --------------------------------------------------------------------------- endpoint helpers


def ctx(request: Request) -> tuple[CaseService, Repository, Organisation]:
    """What `main.build` put on the app: the case service, the repository, the organisation."""
    state = request.app.state
    return state.cases, state.repo, state.org


def actor(org: Organisation, identity: ApiIdentity) -> Actor:
    """The caller as recorded on the timeline (named from the organisation if the token isn't)."""
    person = org.people.get(identity.id)
    return Actor(
        id=identity.id,
        role=identity.role,
        name=identity.name or (person.name if person else None),
    )


async def writable_case(
    service: CaseService,
    org: Organisation,
    case_id: str,
    identity: ApiIdentity,
    action: CaseAction,
) -> dict[str, Any]:
    """The case, if the caller may do `action` on it (404 for an unknown case, 403 with the
    reason from `refusal` otherwise)."""
    case = await service.get(case_id)
    why = refusal(org, identity, case, action)
    if why is not None:
        raise HTTPException(403, why)
    return case


async def acting(
    request: Request, case_id: str, identity: ApiIdentity, action: CaseAction
) -> tuple[CaseService, Actor]:
    """The case service and the caller as actor, once `writable_case` lets them do `action`."""
    service, _, org = ctx(request)
    await writable_case(service, org, case_id, identity, action)
    return service, actor(org, identity)


def case_action(
    router: APIRouter, path: str, summary: str, **extra: Any
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """`router.post` for an action on a case that answers the case: `CaseSummary`, tagged
    "case actions"; `extra` as for `router.post` (status_code, responses)."""
    return router.post(
        path, response_model=CaseSummary, tags=["case actions"], summary=summary, **extra
    )


# --------------------------------------------------------------------------- the router


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/me", response_model=Me, tags=["auth"], summary="Who this token is")
    async def me(request: Request, identity: Viewer) -> Me:
        _, _, org = ctx(request)
        return Me(
            id=identity.id, role=identity.role, unit=identity.unit, name=actor(org, identity).name
        )

    @router.post(
        "/session/sign-out",
        status_code=204,
        tags=["auth"],
        summary="Sign out the console session this request names",
        responses={400: {"description": "no X-Hotline-Session header"}},
    )
    async def sign_out_session(
        request: Request, identity: Viewer, body: SignOutRequest
    ) -> Response:
        """The console calls this when a person signs out: the session named by
        `X-Hotline-Session` is refused from now on, on every console replica, until `until`
        (its cookie's own expiry; at most 7 days are kept)."""
        session = request.headers.get(SESSION_HEADER)
        if session is None:
            raise HTTPException(400, f"sign-out needs the {SESSION_HEADER} header")
        service, repo, _ = ctx(request)
        now = service.clock.now()
        until = min(ensure_utc(body.until), now + SIGNED_OUT_MAX)
        await repo.sign_out_session(session, max(until, now), identity.id)
        return Response(status_code=204)

    @router.get("/cases", response_model=CaseList, tags=["cases"], summary="List and filter cases")
    async def list_cases(
        request: Request,
        identity: Viewer,
        state: Annotated[list[CaseState] | None, Query()] = None,
        open_only: bool = False,
        unit: str | None = None,
        priority: Annotated[list[Priority] | None, Query()] = None,
        category: Annotated[list[Category] | None, Query()] = None,
        location: District | None = None,
        kind: Literal["report", "callback"] | None = None,
        channel: Annotated[list[Channel] | None, Query()] = None,
        q: Annotated[str | None, Query(max_length=200, description="words in the text")] = None,
        assignee: str | None = None,
        opened_from: AwareDatetime | None = None,
        opened_to: AwareDatetime | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> CaseList:
        _, repo, _ = ctx(request)
        query: dict[str, Any] = {}
        states = [s.value for s in state] if state else []
        if open_only:
            states = [s.value for s in OPEN_STATES if not states or s.value in states]
        if states:
            query["state"] = {"$in": states}
        if unit:
            query["responsible_unit"] = unit
        if priority:
            query["priority"] = {"$in": [p.value for p in priority]}
        if category:
            query["category"] = {"$in": [c.value for c in category]}
        if location:
            query["location"] = location.value
        if kind:
            query["kind"] = kind
        if channel:
            query["reporter.channel"] = {"$in": [c.value for c in channel]}
        if q and q.strip():
            query.update(text_query(q, identity))
        if assignee:
            query["assignee.person_id"] = assignee
        if opened_from or opened_to:
            bounds: dict[str, datetime] = {}
            if opened_from:
                bounds["$gte"] = ensure_utc(opened_from)
            if opened_to:
                bounds["$lt"] = ensure_utc(opened_to)
            query["opened_at"] = bounds
        docs, total = await repo.find_cases(query, skip=offset, limit=limit)
        return CaseList(items=[_summary(d) for d in docs], total=total, limit=limit, offset=offset)

    @router.get(
        "/cases/{case_id}",
        response_model=CaseDetail,
        tags=["cases"],
        summary="A case with its timeline, reports and directives",
        responses={404: {"description": "unknown case"}},
    )
    async def get_case(request: Request, case_id: CaseId, identity: Viewer) -> CaseDetail:
        service, repo, org = ctx(request)
        case = await service.get(case_id)
        timeline = await repo.timeline(case_id)
        reports = await repo.reports(case_id)
        directives = await repo.directives_for(case_id)
        see = may_see_reporter(org, identity, case)
        now = service.clock.now()
        return CaseDetail(
            **_summary(case).model_dump(),
            text=case.get("text", "") if see else mask_text(case.get("text", "")),
            reporter=_reporter(case.get("reporter") or {}, see),
            rule=case.get("rule"),
            outcome=case.get("outcome"),
            acknowledged_by=case.get("acknowledged_by"),
            resolved_by=case.get("resolved_by"),
            callback=case.get("callback"),
            allowed_actions=_allowed(case),
            timeline=[_entry(e, see) for e in timeline],
            reports=[
                ReportOut(
                    event_id=str(r["_id"]),
                    at=r["at"],
                    channel=r["channel"],
                    kind=r["kind"],
                    action=r["action"],
                    category=r["category"],
                    priority=r["priority"],
                    reporter=_reporter(r.get("reporter") or {}, see),
                )
                for r in reports
            ],
            directives=[_directive(d, now) for d in directives],
        )

    @case_action(
        router,
        "/cases/{case_id}/acknowledge",
        "Acknowledge a case (stops the escalation)",
        responses={409: {"description": "the case is not new or assigned"}},
    )
    async def acknowledge(
        request: Request,
        case_id: CaseId,
        identity: CallTaker,
        body: AcknowledgeRequest | None = None,
    ) -> CaseSummary:
        service, who = await acting(request, case_id, identity, "acknowledge")
        note = body.note if body else None
        return _summary(await service.acknowledge(case_id, who, note))

    @case_action(
        router,
        "/cases/{case_id}/resolve",
        "Resolve a case with an outcome note (every reporter is told)",
    )
    async def resolve(
        request: Request, case_id: CaseId, identity: Officer, body: ResolveRequest
    ) -> CaseSummary:
        service, who = await acting(request, case_id, identity, "resolve")
        return _summary(await service.resolve(case_id, who, body.outcome))

    @case_action(router, "/cases/{case_id}/close", "Close a resolved case")
    async def close(
        request: Request, case_id: CaseId, identity: Staff, body: CloseRequest | None = None
    ) -> CaseSummary:
        service, _, org = ctx(request)
        note = body.note if body else None
        return _summary(await service.close(case_id, actor(org, identity), note))

    @case_action(
        router,
        "/cases/{case_id}/reopen",
        "Reopen a resolved or closed case (its chain is alerted again)",
    )
    async def reopen(
        request: Request, case_id: CaseId, identity: Staff, body: ReopenRequest
    ) -> CaseSummary:
        service, _, org = ctx(request)
        return _summary(await service.reopen(case_id, actor(org, identity), body.reason))

    @case_action(
        router,
        "/cases/{case_id}/reassign",
        "Give the case to another unit (its on-call officer) or person; a call-taker "
        "forwards a report assigned to them to a unit",
    )
    async def reassign(
        request: Request, case_id: CaseId, identity: CallTaker, body: ReassignRequest
    ) -> CaseSummary:
        service, _, org = ctx(request)
        if ROLE_RANK[identity.role] < ROLE_RANK["staff"]:
            # The Staff Office deciding where a report without a rule or a place goes, through
            # the call-taker who holds it and has just learnt where it happened.
            await writable_case(service, org, case_id, identity, "forward")
            if body.person_id is not None:
                raise HTTPException(
                    403,
                    "a call-taker forwards to a unit (unit_id); choosing a person needs "
                    "the staff role",
                )
        case = await service.reassign(
            case_id, actor(org, identity), body.reason, body.unit_id, body.person_id
        )
        return _summary(case)

    @case_action(router, "/cases/{case_id}/notes", "Add a note to the timeline")
    async def add_note(
        request: Request, case_id: CaseId, identity: CallTaker, body: NoteRequest
    ) -> CaseSummary:
        service, who = await acting(request, case_id, identity, "note")
        return _summary(await service.add_note(case_id, who, body.text))

    @case_action(
        router, "/cases/{case_id}/callback-done", "Record that a missed call was called back"
    )
    async def callback_done(
        request: Request, case_id: CaseId, identity: CallTaker, body: CallbackDoneRequest
    ) -> CaseSummary:
        service, who = await acting(request, case_id, identity, "callback_done")
        return _summary(await service.callback_done(case_id, who, body.reached, body.note))

    @router.post(
        "/cases/{case_id}/directives",
        response_model=DirectiveOut,
        status_code=201,
        tags=["directives"],
        summary="Record the Director's directive with a report-back deadline",
    )
    async def add_directive(
        request: Request, case_id: CaseId, identity: Staff, body: DirectiveRequest
    ) -> DirectiveOut:
        service, _, org = ctx(request)
        deadline = body.deadline
        if deadline is None and body.due_in_minutes is not None:
            deadline = service.clock.now() + timedelta(minutes=body.due_in_minutes)
        doc = await service.add_directive(case_id, actor(org, identity), body.text, deadline)
        return _directive(doc, service.clock.now())

    @router.post(
        "/cases/{case_id}/directives/{directive_id}/report",
        response_model=DirectiveOut,
        tags=["directives"],
        summary="Record the unit's report-back on a directive",
    )
    async def report_directive(
        request: Request,
        case_id: CaseId,
        directive_id: str,
        identity: Officer,
        body: DirectiveReportRequest,
    ) -> DirectiveOut:
        service, who = await acting(request, case_id, identity, "report_directive")
        doc = await service.report_directive(case_id, directive_id, who, body.text)
        return _directive(doc, service.clock.now())

    @router.get(
        "/directives",
        response_model=list[DirectiveOut],
        tags=["directives"],
        summary="Directives, e.g. the overdue ones",
        description="Open (and overdue) directives come by deadline, the longest overdue "
        "first; reported ones by report-back, the latest first.",
    )
    async def list_directives(
        request: Request,
        identity: Viewer,
        state: Literal["open", "reported", "overdue"] | None = None,
        unit: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[DirectiveOut]:
        service, repo, _ = ctx(request)
        now = service.clock.now()
        query: dict[str, Any] = {}
        if state == "overdue":
            query = {"state": "open", "deadline": {"$lt": now}}
        elif state:
            query["state"] = state
        if unit:
            query["unit"] = unit
        found = await repo.find_directives(query, limit, latest_reported=state == "reported")
        return [_directive(d, now) for d in found]

    @router.get(
        "/on-call",
        response_model=OnCallOut,
        tags=["organisation"],
        summary="Who is on call now (or at `at`) in each unit",
    )
    async def who_is_on_call(
        request: Request,
        identity: Viewer,
        at: AwareDatetime | None = None,
        unit: str | None = None,
    ) -> OnCallOut:
        service, _, org = ctx(request)
        when = ensure_utc(at) if at else service.clock.now()
        show_contacts = ROLE_RANK[identity.role] >= ROLE_RANK["staff"]
        units = []
        for u in org.units.values():
            if unit and u.id != unit:
                continue
            duties = [
                DutyOut(
                    duty=duty.value,
                    people=[_person(p, show_contacts) for p in on_call(org, u.id, duty, when)],
                )
                for (unit_id, duty) in org.rosters
                if unit_id == u.id
            ]
            units.append(
                OnCallUnit(
                    unit_id=u.id,
                    code=u.code,
                    kind=u.kind,
                    name_vi=u.name_vi,
                    name_en=u.name_en,
                    commander=_person(org.commander(u.id), show_contacts),
                    duties=duties,
                )
            )
        if unit and not units:
            raise HTTPException(404, f"no unit {unit}")
        local = when.astimezone(org.province.tz)
        return OnCallOut(at=when, local_time=local.isoformat(), units=units)

    @router.get("/units", response_model=list[UnitOut], tags=["organisation"], summary="The units")
    async def units(request: Request, identity: Viewer) -> list[UnitOut]:
        _, _, org = ctx(request)
        return [
            UnitOut(
                unit_id=u.id,
                code=u.code,
                kind=u.kind,
                name_vi=u.name_vi,
                name_en=u.name_en,
                jurisdiction=list(u.jurisdiction),
                categories=list(u.categories),
                commander_id=u.commander_id,
                members=len(u.member_ids),
            )
            for u in org.units.values()
        ]

    @router.get(
        "/stats/daily",
        response_model=DailyStats,
        tags=["statistics"],
        summary="One local day's messages, reports and greetings, by channel, category, unit",
    )
    async def daily_stats(
        request: Request, identity: Viewer, day: Annotated[date | None, Query(alias="date")] = None
    ) -> DailyStats:
        service, repo, org = ctx(request)
        tz = org.province.tz
        day = day or service.clock.now().astimezone(tz).date()
        counts = fold_daily(day.isoformat(), await repo.daily_counts(day.isoformat()))
        resolved = await repo.count_cases({"resolved_day": day.isoformat()})
        start = datetime.combine(day, time(0), tzinfo=tz)
        opened = await repo.cases_between("received_at", start, start + timedelta(days=1))
        acks: dict[str, AckStats] = {}
        for prio, (total, n_acked, med) in time_to_acknowledge(opened).items():
            acks[prio] = AckStats(cases=total, acknowledged=n_acked, median_s=med)
        hours = by_hour(await repo.day_decisions(day.isoformat()), tz)
        return DailyStats(
            date=day,
            messages=counts.messages,
            reports=counts.reports,
            greetings=counts.greetings,
            callbacks=counts.callbacks,
            new_cases=counts.new_cases,
            merged=counts.merged,
            followups=counts.followups,
            officer_replies=counts.officer_replies,
            cases_resolved=resolved,
            by_channel={
                k: ChannelStats(messages=v.messages, reports=v.reports, greetings=v.greetings)
                for k, v in sorted(counts.by_channel.items())
            },
            by_category=dict(sorted(counts.by_category.items())),
            by_unit=dict(sorted(counts.by_unit.items())),
            by_priority=dict(sorted(counts.by_priority.items())),
            by_district=dict(sorted(counts.by_district.items())),
            top_places=[
                PlaceCount(location=district, locality=locality, reports=n)
                for district, locality, n in counts.top_places()
            ],
            by_hour=[
                ChannelStats(messages=h.messages, reports=h.reports, greetings=h.greetings)
                for _, h in sorted(hours.items())
            ],
            time_to_acknowledge=acks,
        )

    return router


def install(app: FastAPI, tokens: dict[str, ApiIdentity]) -> None:
    """Mount the router and the error handlers on a `create_app` app."""
    from hotline_dispatcher.api_console import build_console_router

    app.state.auth = Auth(tokens)
    app.include_router(build_router())
    app.include_router(build_console_router())

    @app.exception_handler(CaseNotFound)
    async def case_not_found(request: Request, exc: CaseNotFound) -> JSONResponse:
        return JSONResponse({"error": "not_found", "detail": str(exc)}, status_code=404)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"error": "not_found", "detail": str(exc)}, status_code=404)

    @app.exception_handler(InvalidTransition)
    async def invalid_transition(request: Request, exc: InvalidTransition) -> JSONResponse:
        return JSONResponse(
            {"error": "conflict", "detail": str(exc), "state": exc.current.value},
            status_code=409,
        )

    @app.exception_handler(InvalidOverride)
    async def invalid_override(request: Request, exc: InvalidOverride) -> JSONResponse:
        return JSONResponse({"error": "invalid_request", "detail": str(exc)}, status_code=422)

    @app.exception_handler(CaseConflict)
    async def conflict(request: Request, exc: CaseConflict) -> JSONResponse:
        return JSONResponse(
            {"error": "conflict", "detail": exc.detail, "state": exc.state}, status_code=409
        )


# --------------------------------------------------------------------------- shaping


_PHONE_LIKE = re.compile(r"\d[\d .\-]{5,}\d")


def text_query(q: str, identity: ApiIdentity) -> dict[str, Any]:
    """A case-insensitive search of the summary and text (regular expressions escaped).

    Below staff, a search for a phone number is refused: a match would reveal that a masked
    number is on a case.
    """
    if ROLE_RANK[identity.role] < ROLE_RANK["staff"] and _PHONE_LIKE.search(q):
        raise HTTPException(403, "searching by phone number needs the staff role or above")
    pattern = re.escape(" ".join(q.split()))
    return {
        "$or": [
            {"summary": {"$regex": pattern, "$options": "i"}},
            {"text": {"$regex": pattern, "$options": "i"}},
        ]
    }


# --------------------------------------------------------------------------- permissions

CaseAction = Literal[
    "acknowledge", "note", "resolve", "callback_done", "report_directive", "correct", "forward"
]
# What a holder of a case below the staff role may do on it (see `holds`). Call-takers take
# reports and forward them (`forward`: reassign to a unit); what was done about a report is for
# the unit that handled it or the Staff Office leader to record.
HOLDER_ACTIONS: dict[str, frozenset[str]] = {
    "officer": frozenset(
        {"acknowledge", "note", "resolve", "callback_done", "report_directive", "correct"}
    ),
    "call_taker": frozenset({"acknowledge", "note", "forward"}),
}
# What any call-taker may do on any callback task: the desk shares the ringing back.
CALLBACK_ACTIONS = frozenset({"note", "callback_done"})


def holds(org: Organisation, identity: ApiIdentity, case: dict[str, Any]) -> bool:
    """Whether the case is the caller's to answer for: it is assigned to them or they are on
    its escalation chain (`assignment.on_chain`, the rule for acknowledging by a reply), or,
    for officers, it is their unit's. A call-taker's unit (the Staff Office) gives them none of
    its cases: only those assigned to them."""
    unit = str(case.get("responsible_unit"))
    if identity.role == "officer" and identity.unit is not None and unit == identity.unit:
        return True
    assignee = (case.get("assignee") or {}).get("person_id")
    return on_chain(org, unit, assignee, identity.id)


def refusal(
    org: Organisation, identity: ApiIdentity, case: dict[str, Any], action: CaseAction
) -> str | None:
    """Why the caller may not do `action` on `case`, or None when they may.

    Staff and above may do anything; below, the role's holder actions on a case they hold
    (`holds`), and for call-takers the callback actions on any callback task.
    """
    if ROLE_RANK[identity.role] >= ROLE_RANK["staff"]:
        return None
    mine = holds(org, identity, case)
    if action in HOLDER_ACTIONS.get(identity.role, ()) and mine:
        if action == "forward" and case.get("kind") != "report":
            return "a callback task stays with the call desk; reassigning it needs the staff role"
        return None
    if identity.role == "call_taker":
        if action in CALLBACK_ACTIONS and case.get("kind") == "callback":
            return None
        if action == "forward":
            return "a call-taker may reassign only a report assigned to them (to a unit)"
        return "call-takers may act only on callback tasks and on cases assigned to them"
    if identity.role == "officer":
        if action == "forward":
            return "reassigning is for the Staff Office (staff role and above)"
        return (
            f"officers may act only on cases of their own unit ({identity.unit}) "
            "or assigned to them"
        )
    return f"role {identity.role} may not act on cases"


def may_see_reporter(org: Organisation, identity: ApiIdentity, case: dict[str, Any]) -> bool:
    """Who reported (contact, and phone numbers in the texts): staff and above; officers and
    call-takers on cases they hold; call-takers on every callback task (they ring the caller
    back); viewers never. The people on a case's escalation chain hold it, which is why the
    dispatch decision marks them `may_see_reporter` (and the informed units' people not)."""
    if ROLE_RANK[identity.role] >= ROLE_RANK["staff"]:
        return True
    if identity.role == "call_taker" and case.get("kind") == "callback":
        return True
    return identity.role in HOLDER_ACTIONS and holds(org, identity, case)


def _summary(doc: dict[str, Any]) -> CaseSummary:
    return CaseSummary(
        case_id=str(doc["_id"]),
        state=doc["state"],
        kind=doc.get("kind", "report"),
        channel=(doc.get("reporter") or {}).get("channel"),
        category=doc["category"],
        priority=doc["priority"],
        location=doc.get("location"),
        locality=doc.get("locality"),
        responsible_unit=doc["responsible_unit"],
        informed_units=doc.get("informed_units") or [],
        assignee=doc.get("assignee"),
        summary=mask_text(doc.get("summary", "")),
        opened_at=doc["opened_at"],
        received_at=doc["received_at"],
        assigned_at=doc.get("assigned_at"),
        acknowledged_at=doc.get("acknowledged_at"),
        resolved_at=doc.get("resolved_at"),
        closed_at=doc.get("closed_at"),
        updated_at=doc.get("updated_at") or doc["opened_at"],
        version=int(doc.get("version", 0)),
        reopened_count=int(doc.get("reopened_count", 0)),
    )


def _reporter(raw: dict[str, Any], see: bool) -> ReporterOut:
    if see:
        return ReporterOut(**{**raw, "masked": False})
    return ReporterOut(
        channel=str(raw.get("channel", "")),
        address=mask_address(raw["address"]) if raw.get("address") else None,
        phone=mask_phone(raw["phone"]) if raw.get("phone") else None,
        display_name=mask_name(raw["display_name"]) if raw.get("display_name") else None,
        language=str(raw.get("language", "vi")),
        masked=True,
    )


def _entry(doc: dict[str, Any], see: bool) -> TimelineEntryOut:
    data = dict(doc.get("data") or {})
    text = doc.get("text")
    if not see:
        if isinstance(data.get("reporter"), dict):
            data["reporter"] = _reporter(data["reporter"], False).model_dump()
        text = mask_text(text) if text else text
    return TimelineEntryOut(
        id=str(doc["_id"]),
        at=doc["at"],
        type=doc["type"],
        actor=doc["actor"],
        text=text,
        data=data,
    )


def _directive(doc: dict[str, Any], now: datetime) -> DirectiveOut:
    deadline = ensure_utc(doc["deadline"])
    return DirectiveOut(
        directive_id=str(doc["_id"]),
        case_id=doc["case_id"],
        text=doc["text"],
        by=doc["by"],
        issued_by=directive_issuer(doc),
        at=doc["at"],
        deadline=deadline,
        state=doc["state"],
        overdue=doc["state"] == "open" and deadline < now,
        unit=doc.get("unit", ""),
        recipients=doc.get("recipients") or [],
        reported_at=doc.get("reported_at"),
        reported_by=doc.get("reported_by"),
        report=doc.get("report"),
    )


def _allowed(case: dict[str, Any]) -> list[str]:
    state = CaseState(case["state"])
    actions = [t.value for t, (sources, _) in TRANSITIONS.items() if state in sources]
    callback_open = not (case.get("callback") or {}).get("done_at")
    if case.get("kind") == "callback" and callback_open and state in OPEN_STATES:
        actions.append("callback_done")
    actions.append("note")
    if state != CaseState.CLOSED:
        actions.append("directive")
    return actions


def _person(person: Person, show_contacts: bool) -> PersonOut:
    return PersonOut(
        id=person.id,
        name=person.name,
        rank=person.rank,
        role=person.role.value,
        unit_id=person.unit_id,
        title=person.title,
        contacts=list(person.contacts) if show_contacts else None,
    )
