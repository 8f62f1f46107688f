"""The dispatch flow: triaged events in, decisions and case writes out, in batches.

`Dispatcher.dispatch_many` is the only implementation; the Kafka handler calls it with one
event or with a whole poll's worth (see `handlers.BatchRunner`). Per batch:

1. claim `dispatch:<event id>` for every event (one insert): a lost claim is a redelivery, whose
   stored decision is re-published (and its writes re-applied, in case the earlier attempt died
   between the decision and the case writes); a claim whose decision is missing is decided
   afresh once the earlier attempt is surely over: it was this process's own (it failed here),
   or the claim is older than the lease and this process takes it over. A younger claim of
   another consumer (a rebalance, two replicas on one partition) may still be being decided:
   the batch fails as `Transient` and the runner retries until that decision is stored (and is
   re-published) or the lease has run out — never two different decisions for one event;
2. decide every fresh event in order, in memory (routing, roster, merging, load), later events
   seeing earlier ones through an `IndexView`;
3. allocate case numbers, claim daily courtesy replies, apply officers' acknowledgements;
4. insert the decisions (the write-ahead record), then the cases and timeline entries;
5. only then update the in-memory working set and the metrics, and return the records to publish.

Steps 4-5 make every step safe to repeat: nothing in memory changes unless the database has it,
and every write has a deterministic id.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from hotline.clock import Clock, ensure_utc
from hotline.contracts.events import (
    Actor,
    CaseEvent,
    CaseEventType,
    CitizenReply,
    DispatchAction,
    DispatchDecision,
    EscalationLevel,
    Recipient,
    Reporter,
    Triage,
    TriagedEvent,
)
from hotline.contracts.labels import Category, Channel, District, InboundKind, Priority
from hotline.contracts.topics import TopicNames
from hotline.ids import stable_id
from hotline.kafka import Outgoing
from hotline.logging import get_logger
from hotline.runner import Transient
from hotline_dispatcher import metrics
from hotline_dispatcher.assignment import (
    choose,
    duty_for,
    escalation_chain,
    informed_recipients,
    on_call,
)
from hotline_dispatcher.cases import CaseState, format_case_id, more_urgent
from hotline_dispatcher.config import Organisation, Person, normalise_phone
from hotline_dispatcher.labels_vi import CATEGORY_VI, DISTRICT_VI
from hotline_dispatcher.merging import (
    CALLBACK,
    REPORT,
    IndexView,
    Lookup,
    MergeMatch,
    OpenCase,
)
from hotline_dispatcher.repository import Repository
from hotline_dispatcher.routing import RouteInput, RouteResult, route
from hotline_dispatcher.state import WorkingSet
from hotline_dispatcher.text import address_numbers, parse_acknowledgement, significant_words

log = get_logger(__name__)

DISPATCHER_ACTOR = Actor(id="dispatcher", role="service")
SUMMARY_TEXT_LIMIT = 160
DECISION_TEXT_LIMIT = 4000
CLAIM_LEASE_S = 30.0
# Event ids this process claimed and has not decided yet; more means they moved elsewhere.
OWN_CLAIMS_LIMIT = 50_000
_PLACEHOLDER = re.compile(r"~[0-9a-f-]{36}")

AcknowledgeFn = Callable[[str, Person, str, datetime], Awaitable[tuple[CaseEvent | None, str]]]
"""(case id, officer, cause event id, at) → the acknowledged case event (if applied), a note."""


def reporter_key(event: TriagedEvent) -> str:
    """One citizen across channels when a phone number is known, else per channel account."""
    phone = normalise_phone(event.sender.phone) if event.sender.phone else None
    if phone:
        return f"tel:{phone}"
    return f"{event.channel.value}:{event.sender.address or event.provider_message_id}"


def make_reporter(event: TriagedEvent) -> Reporter:
    return Reporter(
        channel=event.channel,
        address=event.sender.address,
        phone=event.sender.phone,
        display_name=event.sender.display_name,
        language=event.triage.language,
    )


def summary(event: TriagedEvent, priority: Priority | None = None) -> str:
    t = event.triage
    if event.kind == InboundKind.CALL_MISSED:
        where = f" tại {DISTRICT_VI[t.location]}" if t.location else ""
        return f"{(priority or t.priority).value} cuộc gọi nhỡ{where}: cần gọi lại"
    return summary_text(priority or t.priority, t.category, t.location, event.text)


def summary_text(
    priority: Priority, category: Category, location: District | None, text: str
) -> str:
    """The one-line summary of a report the alerts and the queue show (Vietnamese)."""
    where = f" tại {DISTRICT_VI[location]}" if location else ""
    text = " ".join(text.split())
    if len(text) > SUMMARY_TEXT_LIMIT:
        text = text[: SUMMARY_TEXT_LIMIT - 1] + "…"
    return f"{priority.value} {CATEGORY_VI[category]}{where}: {text}"


def summary_of(decision_doc: dict[str, Any]) -> str:
    """The summary of a stored decision (older documents keep it only in the published JSON)."""
    if decision_doc.get("summary"):
        return str(decision_doc["summary"])
    for out in decision_doc.get("outputs") or ():
        if ".dispatched." in str(out.get("topic", "")) or str(out.get("topic", "")).startswith(
            "hotline.dispatched"
        ):
            try:
                return str(json.loads(out["value"]).get("summary") or "")
            except (ValueError, TypeError):
                return ""
    return ""


def assignee_doc(person: Person | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {
        "person_id": person.id,
        "name": person.name,
        "rank": person.rank,
        "role": person.role.value,
        "unit_id": person.unit_id,
    }


@dataclass
class Plan:
    """One event's decision before case numbers and writes are known."""

    event: TriagedEvent
    action: DispatchAction
    key: str
    words: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()
    route: RouteResult | None = None
    assignee: Person | None = None
    case_ref: str | None = None  # a real case id, or "~<event id>" for a case still unnumbered
    match: MergeMatch | None = None
    # An open case this report was alike but kept apart from (another locality or address).
    kept_apart: MergeMatch | None = None
    raise_priority: bool = False
    # A missed call from a citizen with an open report case: that case (its timeline notes
    # the call); a real case id or a placeholder, like `case_ref`.
    related_ref: str | None = None
    courtesy_key: str | None = None
    officer: Person | None = None
    reasons: list[str] = field(default_factory=list)
    case_events: list[CaseEvent] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    alert: bool = False
    escalation: list[EscalationLevel] = field(default_factory=list)
    informed: list[Recipient] = field(default_factory=list)
    citizen_reply: CitizenReply = CitizenReply.NONE

    @property
    def opens_case(self) -> bool:
        return self.action in (DispatchAction.NEW_CASE, DispatchAction.CALLBACK)


@dataclass
class Stored:
    """A redelivered event whose decision is already in the database."""

    event_id: str
    doc: dict[str, Any]


class Dispatcher:
    """Decides triaged events and writes the case file (see the module docstring)."""

    def __init__(
        self,
        org: Organisation,
        repo: Repository,
        clock: Clock,
        topics: TopicNames,
        working: WorkingSet,
        acknowledge: AcknowledgeFn | None = None,
        claim_lease_s: float = CLAIM_LEASE_S,
    ) -> None:
        self.org = org
        self.repo = repo
        self.clock = clock
        self.topics = topics
        self.working = working
        # CaseService.acknowledge_from_reply, set by the app builder (ops imports this module)
        self.acknowledge = acknowledge
        self.claim_lease_s = claim_lease_s
        # Claims this process holds for events it has not decided yet (an attempt that failed
        # here): a retry decides them at once, whatever their age.
        self._own_claims: dict[str, None] = {}

    # ------------------------------------------------------------------ entry point

    async def dispatch_many(self, events: list[TriagedEvent]) -> list[Outgoing]:
        """Decide a batch of events in order; return the records to publish, in order."""
        return [out for outs in (await self.decide(events)).values() for out in outs]

    async def decide(self, events: list[TriagedEvent]) -> dict[str, list[Outgoing]]:
        """Decide a batch of events in order: event id → the records to publish for it."""
        if not events:
            return {}
        now = self.clock.now()
        unique: list[TriagedEvent] = list({e.event_id: e for e in events}.values())
        won = await self.repo.claim_many([f"dispatch:{e.event_id}" for e in unique], now)
        self._hold([e.event_id for e in unique if f"dispatch:{e.event_id}" in won])
        repeated = [e.event_id for e in unique if f"dispatch:{e.event_id}" not in won]
        stored: dict[str, dict[str, Any]] = {}
        recovered: dict[str, dict[str, Any]] = {}
        if repeated:
            stored = await self.repo.load_decisions(repeated)
            # Claimed but never decided: once the earlier attempt is over (`_resume`), decide
            # again; it may have opened the case.
            missing = [eid for eid in repeated if eid not in stored]
            if missing:
                await self._resume(missing, now)
                recovered = await self.repo.cases_opened_by(missing)
            log.info(
                "redelivered events",
                extra={"count": len(repeated), "decided": len(stored), "cases": len(recovered)},
            )

        view = IndexView(self.working.index)
        loads: Counter[str] = Counter()
        items: list[Plan | Stored] = []
        for event in unique:
            doc = stored.get(event.event_id)
            if doc is not None:
                items.append(Stored(event.event_id, doc))
            else:
                plan = self._plan(event, view, loads, now)
                if event.event_id in recovered and plan.opens_case:
                    self._adopt(plan, recovered[event.event_id])
                items.append(plan)

        plans = [i for i in items if isinstance(i, Plan)]
        numbers, courtesy = await asyncio.gather(
            self._allocate(plans), self._claim_courtesy(plans, now)
        )
        for plan in plans:
            if plan.action == DispatchAction.ACKNOWLEDGEMENT:
                await self._apply_acknowledgement(plan)

        docs: list[dict[str, Any]] = []
        outputs_by_event: dict[str, list[Outgoing]] = {}
        case_docs: list[dict[str, Any]] = []
        timeline: list[dict[str, Any]] = []
        raised: list[tuple[str, str, str, datetime]] = []
        decided_at = self.clock.now()
        for plan in plans:
            if plan.courtesy_key is not None and plan.courtesy_key in courtesy:
                courtesy.discard(plan.courtesy_key)  # the first greeting of the day only
                plan.citizen_reply = CitizenReply.COURTESY
            if numbers:
                plan.reasons = [
                    _PLACEHOLDER.sub(lambda m: numbers.get(m[0], m[0]), r) for r in plan.reasons
                ]
                if plan.match is not None:
                    detail = _PLACEHOLDER.sub(lambda m: numbers.get(m[0], m[0]), plan.match.detail)
                    plan.match = replace(plan.match, detail=detail)
                if plan.kept_apart is not None:
                    other = plan.kept_apart.case
                    plan.kept_apart = replace(
                        plan.kept_apart,
                        case=replace(other, case_id=numbers.get(other.case_id, other.case_id)),
                    )
            case_id = numbers.get(plan.case_ref or "", plan.case_ref)
            if plan.related_ref is not None:
                plan.related_ref = numbers.get(plan.related_ref, plan.related_ref)
            decision, case_doc = self._materialise(plan, case_id, decided_at)
            if case_doc is not None:
                case_docs.append(case_doc)
            timeline.extend(plan.timeline)
            outs = self._outputs(decision, plan.case_events)
            docs.append(self._decision_doc(plan, decision, outs))
            outputs_by_event[plan.event.event_id] = outs
            if plan.case_ref is not None and plan.case_ref.startswith("~") and case_id:
                view.rekey(plan.case_ref, case_id)
            if plan.raise_priority and case_id:
                priority = plan.event.triage.priority.value
                raised.append((case_id, priority, plan.event.event_id, decided_at))

        # Cases and timeline first (deterministic ids: repeating them is harmless), the
        # decision last: a stored decision means everything it implies is stored too.
        await asyncio.gather(
            self.repo.insert_cases(case_docs),
            self.repo.insert_timeline(timeline),
            self.repo.record_priority_raises(raised),
        )
        await self.repo.insert_decisions(docs)
        for event in unique:
            self._own_claims.pop(event.event_id, None)

        view.commit()
        self.working.loads.update(loads)
        for plan in plans:
            self._observe(plan, decided_at)
        out: dict[str, list[Outgoing]] = {}
        for item in items:
            if isinstance(item, Stored):
                out[item.event_id] = self._stored_outputs(item.doc)
            else:
                out[item.event.event_id] = outputs_by_event[item.event.event_id]
        return out

    def _hold(self, event_ids: list[str]) -> None:
        self._own_claims.update(dict.fromkeys(event_ids))
        while len(self._own_claims) > OWN_CLAIMS_LIMIT:
            del self._own_claims[next(iter(self._own_claims))]

    async def _resume(self, event_ids: list[str], now: datetime) -> None:
        """Make sure no other attempt is still deciding these claimed, undecided events.

        This process's own claims are over (their attempt failed here). Another consumer's
        claim is taken over once it is older than the lease (its owner died; a live attempt
        takes milliseconds, and Kafka hands a dead consumer's partitions on only after its
        session timeout, about as long); a younger one may still be running, and deciding it
        here too could open a second case and publish a different decision. Then: `Transient`,
        so the runner retries (the decision is stored by then and re-published, or the lease
        has run out).
        """
        foreign = [eid for eid in event_ids if eid not in self._own_claims]
        if not foreign:
            return
        times = await self.repo.claim_times([f"dispatch:{eid}" for eid in foreign])
        busy: list[tuple[str, float]] = []
        for eid in foreign:
            key = f"dispatch:{eid}"
            at = times.get(key)
            age = (now - ensure_utc(at)).total_seconds() if at is not None else None
            if age is not None and age < self.claim_lease_s:
                busy.append((eid, age))
            elif await self.repo.take_over(key, at, now):
                log.warning(
                    "took over a stale dispatch claim",
                    extra={"event_id": eid, "age_s": None if age is None else round(age, 1)},
                )
                self._hold([eid])
            else:
                busy.append((eid, 0.0))  # another consumer took it over just now
        if busy:
            eid, age = busy[0]
            raise Transient(
                f"{len(busy)} event(s) claimed by another consumer and not decided yet "
                f"(e.g. {eid}, claimed {age:.1f} s ago; lease {self.claim_lease_s:g} s)"
            )

    def _adopt(self, plan: Plan, case: dict[str, Any]) -> None:
        """Redo a decision whose case an earlier, interrupted attempt already opened."""
        plan.case_ref = str(case["_id"])
        pid = (case.get("assignee") or {}).get("person_id")
        plan.assignee = self.org.people.get(str(pid)) if pid else None
        unit = str(case["responsible_unit"])
        informed = tuple(case.get("informed_units") or ())
        plan.route = RouteResult(unit, informed, str(case.get("rule") or "recovered"), ())
        at = ensure_utc(plan.event.received_at)
        plan.escalation = escalation_chain(
            self.org, unit, plan.assignee, Priority(case["priority"]), at
        )
        plan.informed = informed_recipients(self.org, list(informed), at)
        plan.reasons.append(f"resumed: {plan.case_ref} was opened by an interrupted attempt")

    # ------------------------------------------------------------------ planning (pure)

    def _plan(
        self, event: TriagedEvent, view: IndexView, loads: Counter[str], now: datetime
    ) -> Plan:
        t = event.triage
        key = reporter_key(event)
        at = ensure_utc(event.received_at)

        officer = self.org.person_by_contact(
            event.channel.value, event.sender.user_id, event.sender.phone
        )
        if officer is not None:
            case_id = parse_acknowledgement(event.text, self.org.province.case_prefix)
            if case_id is not None:
                return Plan(
                    event,
                    DispatchAction.ACKNOWLEDGEMENT,
                    key,
                    case_ref=case_id,
                    officer=officer,
                    reasons=[
                        f"reply from {officer.id} ({officer.role.value}) acknowledges {case_id}"
                    ],
                )

        # A missed call always asks for a call back, whatever else the caller has open (and
        # however it was triaged): decided before greetings and before follow-up merging.
        if event.kind == InboundKind.CALL_MISSED:
            return self._plan_callback(event, key, view, loads, at)

        if t.category == Category.GREETING or t.priority == Priority.P4 or not t.actionable:
            day = self._local_day(at)
            return Plan(
                event,
                DispatchAction.GREETING,
                key,
                courtesy_key=f"courtesy:{day}:{key}",
                reasons=["greeting: no case, logged for statistics"],
            )

        if event.flood_limited and t.priority != Priority.P1:
            # The sender was over its rate at ingest (a bot, a stuck client, a prank): the
            # message is kept, triaged and listed with the greetings, where the Staff Office
            # can mark it as a report, but it opens no case and sends no alert and no reply.
            # An emergency is never held back: a P1 goes on as usual.
            return Plan(
                event,
                DispatchAction.GREETING,
                key,
                reasons=[
                    f"flood-limited sender: {t.category.value} {t.priority.value} kept without "
                    "a case, an alert or a reply (the Staff Office can mark it as a report)"
                ],
            )

        words = significant_words(event.text)
        addresses = address_numbers(f"{event.text}\n{event.place or ''}")
        found = self._lookup(event, key, words, view, at, REPORT, addresses)
        if found.match is not None:
            return self._plan_join(event, key, words, found.match, view, at, addresses)
        plan = self._plan_new_case(event, key, words, view, loads, at, addresses)
        if found.kept_apart is not None:
            # Alike, but somewhere else: said where the Staff Office reads why a case exists
            # (it can still merge the two from the case page).
            apart = found.kept_apart
            plan.kept_apart = apart
            plan.reasons.append(
                f"not merged into {apart.case.case_id} (text similarity {apart.score:.2f}): "
                f"{apart.detail}"
            )
        return plan

    def _lookup(
        self,
        event: TriagedEvent,
        key: str,
        words: frozenset[str],
        view: IndexView,
        at: datetime,
        kind: str,
        addresses: frozenset[str] = frozenset(),
    ) -> Lookup:
        t = event.triage
        merge = self.org.routing.merge
        return view.lookup(
            reporter_key=key,
            category=t.category,
            priority=t.priority,
            location=t.location,
            words=words,
            at=at,
            window=merge.window,
            followup_window=merge.followup_window,
            threshold=merge.similarity,
            kind=kind,
            locality=t.locality,
            addresses=addresses,
        )

    def _plan_join(
        self,
        event: TriagedEvent,
        key: str,
        words: frozenset[str],
        match: MergeMatch,
        view: IndexView,
        at: datetime,
        addresses: frozenset[str] = frozenset(),
    ) -> Plan:
        t = event.triage
        case = match.case
        action = DispatchAction.FOLLOWUP if match.reason == "followup" else DispatchAction.MERGED
        plan = Plan(
            event,
            action,
            key,
            words=words,
            addresses=addresses,
            case_ref=case.case_id,
            match=match,
        )
        plan.reasons.append(f"{action.value}: {match.detail}")
        plan.citizen_reply = (
            CitizenReply.RECEIPT if action == DispatchAction.MERGED else CitizenReply.NONE
        )
        if more_urgent(t.priority, case.priority):
            # More urgent news about an open case: alert its chain again at the new priority.
            plan.raise_priority = True
            plan.alert = True
            assignee = self.org.people.get(case.assignee_id) if case.assignee_id else None
            plan.assignee = assignee
            plan.escalation = escalation_chain(
                self.org, case.responsible_unit, assignee, t.priority, at
            )
            # Whoever would respond to this news on its own is informed too (a P3 theft held
            # by pc02 turning P2 tells the district police, who respond to P2 thefts).
            result = route(self.org, self._route_input(event))
            informed = [
                u
                for u in dict.fromkeys((result.responsible_unit, *result.informed_units))
                if u != case.responsible_unit
            ]
            plan.route = RouteResult(case.responsible_unit, tuple(informed), result.rule_id, ())
            plan.informed = informed_recipients(self.org, informed, at)
            plan.reasons.append(
                f"priority raised {case.priority.value} → {t.priority.value}: chain alerted again"
            )
        else:
            plan.reasons.append("no new alert")
            plan.route = RouteResult(case.responsible_unit, (), "merge", ())
        view.add_report(
            case.case_id,
            key,
            at,
            t.priority if plan.raise_priority else None,
            locality=t.locality,
            addresses=addresses,
        )
        return plan

    def _plan_callback(
        self,
        event: TriagedEvent,
        key: str,
        view: IndexView,
        loads: Counter[str],
        at: datetime,
    ) -> Plan:
        """A missed call: the caller's open callback task if there is one (follow-up), else a
        new callback task for the Staff Office's on-call call-taker. The caller's latest open
        report case, if any, is named in the reasons and gets a `reporter_called` entry."""
        match = self._lookup(event, key, frozenset(), view, at, CALLBACK).match
        if match is not None:
            return self._plan_join(event, key, frozenset(), match, view, at)
        unit_id = self.org.routing.callback_unit_id
        candidates = on_call(self.org, unit_id, self.org.routing.callback_duty, at)
        assignee = choose(candidates, self._loads(loads))
        plan = Plan(event, DispatchAction.CALLBACK, key, assignee=assignee, alert=True)
        plan.route = RouteResult(unit_id, (), "callback", ())
        plan.reasons.append(
            f"missed call → callback task for {unit_id} call-taker "
            f"{assignee.id if assignee else '(nobody on call)'}"
        )
        own = [
            c
            for c in view.own_cases(key, at - self.org.routing.merge.followup_window)
            if c.kind == REPORT
        ]
        if own:
            related = max(own, key=lambda c: (c.last_report_at, c.case_id))
            plan.related_ref = related.case_id
            plan.reasons.append(f"the caller has open case {related.case_id}")
        plan.escalation = escalation_chain(self.org, unit_id, assignee, event.triage.priority, at)
        self._open_in_view(plan, view, loads, frozenset(), unit_id, CALLBACK)
        return plan

    def _plan_new_case(
        self,
        event: TriagedEvent,
        key: str,
        words: frozenset[str],
        view: IndexView,
        loads: Counter[str],
        at: datetime,
        addresses: frozenset[str] = frozenset(),
    ) -> Plan:
        t = event.triage
        result = route(self.org, self._route_input(event))
        unit_id = result.responsible_unit
        candidates = on_call(self.org, unit_id, duty_for(self.org, unit_id), at)
        assignee = choose(candidates, self._loads(loads))
        plan = Plan(
            event,
            DispatchAction.NEW_CASE,
            key,
            words=words,
            addresses=addresses,
            route=result,
            assignee=assignee,
            alert=True,
            citizen_reply=CitizenReply.RECEIPT,
        )
        plan.reasons.extend(result.reasons)
        if assignee is not None:
            others = len(candidates) - 1
            plan.reasons.append(
                f"on call in {unit_id}: {assignee.id}"
                + (f" (fewest open cases of {others + 1})" if others else "")
            )
        else:
            plan.reasons.append(f"nobody on call in {unit_id}: the commander is alerted first")
        plan.escalation = escalation_chain(self.org, unit_id, assignee, t.priority, at)
        plan.informed = informed_recipients(self.org, list(result.informed_units), at)
        self._open_in_view(plan, view, loads, words, unit_id, REPORT)
        return plan

    def _open_in_view(
        self,
        plan: Plan,
        view: IndexView,
        loads: Counter[str],
        words: frozenset[str],
        unit_id: str,
        kind: str,
    ) -> None:
        t = plan.event.triage
        at = ensure_utc(plan.event.received_at)
        plan.case_ref = f"~{plan.event.event_id}"
        view.put(
            OpenCase(
                case_id=plan.case_ref,
                category=t.category,
                location=t.location,
                priority=t.priority,
                words=words,
                opened_at=at,
                last_report_at=at,
                reporter_keys=frozenset({plan.key}),
                responsible_unit=unit_id,
                assignee_id=plan.assignee.id if plan.assignee else None,
                kind=kind,
                localities=frozenset({t.locality}) if t.locality else frozenset(),
                addresses=plan.addresses,
            )
        )
        if plan.assignee is not None:
            loads[plan.assignee.id] += 1

    def _loads(self, batch: Counter[str]) -> dict[str, int]:
        base = self.working.loads
        return {k: base.get(k, 0) + batch.get(k, 0) for k in set(base) | set(batch)}

    def _route_input(self, event: TriagedEvent) -> RouteInput:
        t = event.triage
        return RouteInput(t.category, t.priority, t.location, event.kind, event.channel)

    def _local_day(self, at: datetime) -> str:
        return at.astimezone(self.org.province.tz).date().isoformat()

    # ------------------------------------------------------------------ I/O steps

    async def _allocate(self, plans: list[Plan]) -> dict[str, str]:
        """Case numbers for the plans that open a case: placeholder → `HUE-YYYYMMDD-NNNN`."""
        by_day: dict[str, list[Plan]] = {}
        for plan in plans:
            if plan.opens_case and (plan.case_ref or "").startswith("~"):
                day = self._local_day(ensure_utc(plan.event.received_at))
                by_day.setdefault(day, []).append(plan)
        out: dict[str, str] = {}
        prefix = self.org.province.case_prefix
        for day, group in by_day.items():
            day_date = datetime.fromisoformat(day).date()
            numbers = await self.repo.allocate_numbers(
                f"case:{prefix}:{day_date:%Y%m%d}", len(group)
            )
            for plan, n in zip(group, numbers, strict=True):
                out[plan.case_ref or ""] = format_case_id(prefix, day_date, n)
        return out

    async def _claim_courtesy(self, plans: list[Plan], now: datetime) -> set[str]:
        keys = [p.courtesy_key for p in plans if p.courtesy_key is not None]
        return await self.repo.claim_many(keys, now) if keys else set()

    async def _apply_acknowledgement(self, plan: Plan) -> None:
        assert plan.officer is not None and plan.case_ref is not None
        if self.acknowledge is None:
            plan.reasons.append("acknowledgements are not applied by this dispatcher")
            return
        event: CaseEvent | None
        event, note = await self.acknowledge(
            plan.case_ref, plan.officer, plan.event.event_id, ensure_utc(plan.event.received_at)
        )
        plan.reasons.append(note)
        if event is not None:
            plan.case_events.append(event)

    # ------------------------------------------------------------------ materialising

    def _materialise(
        self, plan: Plan, case_id: str | None, decided_at: datetime
    ) -> tuple[DispatchDecision, dict[str, Any] | None]:
        event = plan.event
        t = event.triage
        priority = t.priority
        unit = plan.route.responsible_unit if plan.route else None
        decision = DispatchDecision(
            decision_id=f"dec-{event.event_id}",
            event_id=event.event_id,
            action=plan.action,
            case_id=case_id,
            category=t.category,
            priority=priority,
            location=t.location,
            locality=t.locality,
            language=t.language,
            responsible_unit=unit,
            informed_units=list(plan.route.informed_units) if plan.route else [],
            assignee=plan.escalation[0].recipients[0]
            if plan.escalation and plan.assignee is not None
            else None,
            escalation=plan.escalation,
            informed=plan.informed,
            alert=plan.alert,
            summary=summary(event) if plan.action != DispatchAction.ACKNOWLEDGEMENT else "",
            reporter=make_reporter(event),
            citizen_reply=plan.citizen_reply,
            reasons=plan.reasons,
            received_at=event.received_at,
            triaged_at=t.triaged_at,
            decided_at=decided_at,
        )
        case_doc: dict[str, Any] | None = None
        if case_id is None or plan.action in (
            DispatchAction.GREETING,
            DispatchAction.ACKNOWLEDGEMENT,
        ):
            return decision, None
        if plan.opens_case:
            case_doc = self._case_doc(plan, decision, case_id, decided_at)
            plan.timeline.extend(self._opening_timeline(plan, decision, case_id, decided_at))
            if plan.related_ref is not None:
                plan.timeline.append(
                    _entry(
                        f"{event.event_id}:called",
                        plan.related_ref,
                        ensure_utc(event.received_at),
                        "reporter_called",
                        DISPATCHER_ACTOR,
                        f"Người phản ánh gọi nhỡ đường dây nóng: nhiệm vụ gọi lại {case_id}",
                        {
                            "event_id": event.event_id,
                            "callback_case_id": case_id,
                            "channel": event.channel.value,
                            "kind": event.kind.value,
                            "reporter": decision.reporter.model_dump(mode="json"),
                            "received_at": event.received_at.isoformat(),
                        },
                    )
                )
            plan.case_events.append(
                self._case_event(
                    CaseEventType.OPENED,
                    case_id,
                    decided_at,
                    event.event_id,
                    state=case_doc["state"],
                    priority=priority,
                    text=decision.summary,
                    data={
                        "action": plan.action.value,
                        "responsible_unit": unit,
                        "assignee": plan.assignee.id if plan.assignee else None,
                        "category": t.category.value,
                        "location": t.location.value if t.location else None,
                    },
                )
            )
        else:
            assert plan.match is not None
            plan.timeline.append(
                _entry(
                    f"{event.event_id}:report",
                    case_id,
                    decided_at,
                    CaseEventType.REPORT_ADDED.value,
                    DISPATCHER_ACTOR,
                    event.text,
                    {
                        "event_id": event.event_id,
                        "reason": plan.match.reason,
                        "detail": plan.match.detail,
                        "score": round(plan.match.score, 3),
                        "channel": event.channel.value,
                        "kind": event.kind.value,
                        "reporter": decision.reporter.model_dump(mode="json"),
                        "received_at": event.received_at.isoformat(),
                        "priority_raised": plan.raise_priority,
                        # The added report's own triage, as the `triaged` entry of an opening
                        # report has it (what the classifier said about this message).
                        **_triage_data(t),
                    },
                )
            )
            plan.case_events.append(
                self._case_event(
                    CaseEventType.REPORT_ADDED,
                    case_id,
                    decided_at,
                    event.event_id,
                    priority=priority,
                    text=decision.summary,
                    data={"reason": plan.match.reason, "priority_raised": plan.raise_priority},
                )
            )
            logged = self._call_logged_entry(event, case_id)
            if logged is not None:
                plan.timeline.append(logged)
        return decision, case_doc

    def _call_logged_entry(self, event: TriagedEvent, case_id: str) -> dict[str, Any] | None:
        """ "Call logged by <person>": a desk call summary names the call-taker in `logged_by`
        (the console signs people in and says who is at the desk). Nothing for a desk client
        that names no rostered person (its token's own name)."""
        if event.channel != Channel.DESK or not event.logged_by:
            return None
        person = self.org.people.get(event.logged_by)
        if person is None:
            return None
        return _entry(
            call_logged_entry_id(event.event_id),
            case_id,
            ensure_utc(event.received_at),
            "call_logged",
            Actor(id=person.id, role=person.role.value, name=person.name),
            None,
            {"event_id": event.event_id},
        )

    def _case_doc(
        self, plan: Plan, decision: DispatchDecision, case_id: str, at: datetime
    ) -> dict[str, Any]:
        event = plan.event
        t = event.triage
        received = ensure_utc(event.received_at)
        day = self._local_day(received)
        return {
            "_id": case_id,
            "number": int(case_id.rsplit("-", 1)[1]),
            "day": day,
            "version": 0,
            "state": (CaseState.ASSIGNED if plan.assignee else CaseState.NEW).value,
            "kind": "callback" if plan.action == DispatchAction.CALLBACK else "report",
            "category": t.category.value,
            "priority": t.priority.value,
            "location": t.location.value if t.location else None,
            "language": t.language.value,
            "responsible_unit": decision.responsible_unit,
            "informed_units": decision.informed_units,
            "assignee": assignee_doc(plan.assignee),
            "rule": plan.route.rule_id if plan.route else None,
            "summary": decision.summary,
            "text": event.text,
            "reporter": decision.reporter.model_dump(mode="json"),
            "reporter_key": plan.key,
            "opened_by": event.event_id,
            "opened_at": at,
            "received_at": received,
            "assigned_at": at if plan.assignee else None,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "resolved_at": None,
            "resolved_by": None,
            "outcome": None,
            "closed_at": None,
            "reopened_count": 0,
            "updated_at": at,
            "tokens": sorted(plan.words),
            "locality": t.locality,
            # Where exactly, for merging (the index is rebuilt from these and the reports').
            "localities": [t.locality] if t.locality else [],
            "addresses": sorted(plan.addresses),
            "callback": {"done_at": None, "by": None, "reached": None}
            if plan.action == DispatchAction.CALLBACK
            else None,
        }

    def _opening_timeline(
        self, plan: Plan, decision: DispatchDecision, case_id: str, at: datetime
    ) -> list[dict[str, Any]]:
        event = plan.event
        t = event.triage
        eid = event.event_id
        entries = [
            _entry(
                f"{eid}:opened",
                case_id,
                ensure_utc(event.received_at),
                CaseEventType.OPENED.value,
                DISPATCHER_ACTOR,
                event.text,
                {
                    "event_id": eid,
                    "action": plan.action.value,
                    "channel": event.channel.value,
                    "kind": event.kind.value,
                    "reporter": decision.reporter.model_dump(mode="json"),
                    "received_at": event.received_at.isoformat(),
                },
            ),
            _entry(
                f"{eid}:triaged",
                case_id,
                ensure_utc(t.triaged_at),
                "triaged",
                Actor(id="classifier", role="service", name=t.model_version),
                None,
                _triage_data(t),
            ),
        ]
        entries.append(
            _entry(
                f"{eid}:assigned",
                case_id,
                at,
                CaseEventType.ASSIGNED.value,
                DISPATCHER_ACTOR,
                "; ".join(decision.reasons),
                {
                    "responsible_unit": decision.responsible_unit,
                    "informed_units": decision.informed_units,
                    "assignee": assignee_doc(plan.assignee),
                    "escalation": [
                        {
                            "level": lvl.level,
                            "role": lvl.role.value,
                            "person_ids": [r.person_id for r in lvl.recipients],
                            "timeout_s": lvl.timeout_s,
                        }
                        for lvl in decision.escalation
                    ],
                    "informed": [r.person_id for r in decision.informed],
                    "rule": plan.route.rule_id if plan.route else None,
                    # Alike an open case but elsewhere: the console links it, for a merge.
                    "kept_apart": {
                        "case_id": plan.kept_apart.case.case_id,
                        "by": plan.kept_apart.reason,
                        "detail": plan.kept_apart.detail,
                    }
                    if plan.kept_apart is not None
                    else None,
                },
            )
        )
        logged = self._call_logged_entry(event, case_id)
        if logged is not None:
            entries.append(logged)
        return entries

    def _case_event(
        self,
        type_: CaseEventType,
        case_id: str,
        at: datetime,
        cause: str,
        *,
        state: str | None = None,
        priority: Priority | None = None,
        text: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> CaseEvent:
        return CaseEvent(
            event_id=stable_id("case-event", type_.value, cause),
            case_id=case_id,
            type=type_,
            source="dispatcher",
            actor=DISPATCHER_ACTOR,
            at=at,
            case_state=state,
            priority=priority,
            text=text,
            data=data or {},
        )

    def _decision_doc(
        self, plan: Plan, decision: DispatchDecision, outputs: list[Outgoing]
    ) -> dict[str, Any]:
        """The stored decision: what was published (as JSON text, re-published byte for byte
        on redelivery) and the fields the statistics and the case's report list need."""
        event = plan.event
        received = ensure_utc(event.received_at)
        return {
            "_id": event.event_id,
            "day": self._local_day(received),
            "at": received,
            "decided_at": decision.decided_at,
            "channel": event.channel.value,
            "kind": event.kind.value,
            "action": plan.action.value,
            "category": event.triage.category.value,
            "priority": event.triage.priority.value,
            "location": event.triage.location.value if event.triage.location else None,
            "locality": event.triage.locality,
            "addresses": sorted(plan.addresses),
            "unit": decision.responsible_unit,
            "case_id": decision.case_id,
            "reporter_key": plan.key,
            "reporter": decision.reporter.model_dump(mode="json"),
            "officer": plan.officer.id if plan.officer else None,
            # For the console's message feed, corrections and splits (greetings have no case).
            "summary": decision.summary,
            "text": event.text[:DECISION_TEXT_LIMIT],
            "language": event.triage.language.value,
            "logged_by": event.logged_by,
            "outputs": [
                {"topic": o.topic, "key": o.key, "value": o.value.decode("utf-8")} for o in outputs
            ],
        }

    def _outputs(self, decision: DispatchDecision, events: list[CaseEvent]) -> list[Outgoing]:
        out = [
            Outgoing.of(self.topics.dispatched, decision, key=decision.case_id or decision.event_id)
        ]
        out.extend(Outgoing.of(self.topics.case_events, e, key=e.case_id) for e in events)
        return out

    def _stored_outputs(self, doc: dict[str, Any]) -> list[Outgoing]:
        return [
            Outgoing(topic=str(o["topic"]), value=str(o["value"]).encode(), key=o.get("key"))
            for o in doc.get("outputs", [])
        ]

    def _observe(self, plan: Plan, decided_at: datetime) -> None:
        t = plan.event.triage
        unit = plan.route.responsible_unit if plan.route else "none"
        metrics.DECISIONS.labels(unit, t.priority.value, plan.action.value).inc()
        if plan.opens_case:
            latency = (decided_at - ensure_utc(plan.event.received_at)).total_seconds()
            metrics.ASSIGNMENT_SECONDS.observe(max(0.0, latency))
        if plan.action == DispatchAction.CALLBACK:
            metrics.CALLBACKS.inc()
        elif plan.action == DispatchAction.GREETING:
            metrics.GREETINGS.labels(plan.event.channel.value).inc()
        elif plan.match is not None:
            metrics.MERGES.labels(plan.match.reason).inc()
        if plan.kept_apart is not None:
            metrics.KEPT_APART.labels(plan.kept_apart.reason).inc()


def _triage_data(t: Triage) -> dict[str, Any]:
    """The classifier's triage of one message, as timeline data."""
    return {
        "category": t.category.value,
        "priority": t.priority.value,
        "location": t.location.value if t.location else None,
        "language": t.language.value,
        "confidence": t.confidence,
        "reasons": list(t.reasons),
        "model_version": t.model_version,
    }


def call_logged_entry_id(event_id: str) -> str:
    """The timeline entry saying who logged a desk call (one per call, whoever writes it)."""
    return f"{event_id}:call_logged"


def _entry(
    entry_id: str,
    case_id: str,
    at: datetime,
    type_: str,
    actor: Actor,
    text: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """A timeline entry document (deterministic id, so re-applying never duplicates it)."""
    return {
        "_id": entry_id,
        "case_id": case_id,
        "at": at,
        "type": type_,
        "actor": actor.model_dump(mode="json"),
        "text": text,
        "data": data,
    }


def timeline_entry(
    entry_id: str,
    case_id: str,
    at: datetime,
    type_: str,
    actor: Actor,
    text: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return _entry(entry_id, case_id, at, type_, actor, text, data or {})
