"""Case operations: the ops API's writes, events from other services, periodic maintenance.

Every change to a case is a versioned update (exactly one concurrent writer wins, see
`Repository.update_case`), a timeline entry with its actor, and a case event for the notifier
and the console. Case events go through the `outbox` collection: recorded with the change,
published at once, deleted when the broker acknowledged them, and re-published by the
maintenance loop if the broker was unavailable — a write is never lost between the database
and Kafka.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from hotline.clock import Clock, ensure_utc
from hotline.contracts.events import (
    Actor,
    CaseEvent,
    CaseEventType,
    DeliveryOutcome,
    DirectiveIssuer,
    Recipient,
    Reporter,
)
from hotline.contracts.labels import Category, Channel, District, InboundKind, Priority
from hotline.contracts.topics import TopicNames
from hotline.ids import new_event_id, stable_id
from hotline.kafka import Outgoing, Publisher, PublishError
from hotline.logging import get_logger
from hotline_dispatcher import metrics
from hotline_dispatcher.assignment import (
    choose,
    duty_for,
    escalation_chain,
    on_call,
    on_chain,
    recipient,
)
from hotline_dispatcher.cases import (
    OPEN_STATES,
    CaseState,
    InvalidTransition,
    Transition,
    format_case_id,
    more_urgent,
    next_state,
)
from hotline_dispatcher.config import Organisation, Person
from hotline_dispatcher.corrections import changed as changed_fields
from hotline_dispatcher.flows import (
    assignee_doc,
    call_logged_entry_id,
    summary_of,
    summary_text,
    timeline_entry,
)
from hotline_dispatcher.overrides import ShiftOverrides, validate
from hotline_dispatcher.repository import Repository
from hotline_dispatcher.routing import RouteInput, route
from hotline_dispatcher.state import WorkingSet, open_case_from_doc

log = get_logger(__name__)

VERSION_RETRIES = 50
STUCK_CLAIM_AGE = timedelta(seconds=10)


class CaseNotFound(Exception):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id}")
        self.case_id = case_id


class CaseConflict(Exception):
    """A request the case's current state does not allow (the API answers 409 with the state)."""

    def __init__(self, detail: str, state: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.state = state


class NotFound(Exception):
    """Something other than the case (a directive, a unit, a person) does not exist."""


@dataclass(frozen=True)
class Changed:
    before: dict[str, Any]
    after: dict[str, Any]


class CaseService:
    """Writes to existing cases, from the API, from other services, and on a timer."""

    def __init__(
        self,
        org: Organisation,
        repo: Repository,
        clock: Clock,
        topics: TopicNames,
        publisher: Publisher | None,
        working: WorkingSet,
    ) -> None:
        self.org = org
        self.repo = repo
        self.clock = clock
        self.topics = topics
        self.publisher = publisher
        self.working = working
        self.shifts = ShiftOverrides(org)

    # ------------------------------------------------------------------ reads

    async def get(self, case_id: str) -> dict[str, Any]:
        case = await self.repo.get_case(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        return case

    # ------------------------------------------------------------------ transitions

    async def _transition(
        self,
        case_id: str,
        transition: Transition | None,
        fields: dict[str, Any],
        at: datetime,
        *,
        require: set[CaseState] | None = None,
    ) -> Changed:
        """Apply a state transition (or, with `transition=None`, a field change) exactly once."""
        stuck_since: tuple[int, datetime] | None = None
        for _ in range(VERSION_RETRIES):
            case = await self.get(case_id)
            state = CaseState(case["state"])
            if require is not None and state not in require:
                raise CaseConflict(
                    f"the case is {state.value}; this needs "
                    + " or ".join(sorted(s.value for s in require)),
                    state.value,
                )
            new_fields = dict(fields)
            if transition is not None:
                new_fields["state"] = next_state(state, transition).value
            version = int(case.get("version", 0))
            if await self.repo.update_case(case_id, version, new_fields, at):
                after = {**case, **new_fields, "version": version + 1}
                return Changed(case, after)
            # Someone else is changing it: re-read; unstick a claim whose writer died.
            if stuck_since is None or stuck_since[0] != version:
                stuck_since = (version, self.clock.now())
            claimed_at = await self.repo.claim_time(f"case:{case_id}:v{version + 1}")
            if claimed_at is not None and ensure_utc(claimed_at) < at - STUCK_CLAIM_AGE:
                log.warning("skipping a stuck case version", extra={"case_id": case_id})
                await self.repo.skip_version(case_id, version, at)
            await asyncio.sleep(0.02)
        raise CaseConflict("the case is being changed by someone else; try again", "busy")

    async def acknowledge(
        self, case_id: str, actor: Actor, note: str | None = None, via: str = "api"
    ) -> dict[str, Any]:
        at = self.clock.now()
        changed = await self._transition(
            case_id,
            Transition.ACKNOWLEDGE,
            {"acknowledged_at": at, "acknowledged_by": actor.model_dump(mode="json")},
            at,
        )
        event = self._event(
            CaseEventType.ACKNOWLEDGED,
            changed.after,
            actor,
            at,
            text=note,
            data={"via": via},
        )
        await self._record(changed.after, event, "acknowledged", note, {"via": via})
        return changed.after

    async def acknowledge_from_reply(
        self, case_id: str, officer: Person, cause: str, at: datetime
    ) -> tuple[CaseEvent | None, str]:
        """An officer's "OK HUE-..." reply (flow 3); the case event is published by the caller.

        Only someone on the case's escalation chain may acknowledge it by a reply: its assignee,
        its unit's commander, a Staff Office leader or the Director (the notifier applies the
        same rule to the chain it is running). Any other rostered officer's reply is recorded
        and refused; the ack link and the ops API are unchanged.
        """
        actor = Actor(id=officer.id, role=officer.role.value, name=officer.name)
        case = await self.repo.get_case(case_id)
        if case is None:
            return None, f"no case {case_id}: nothing acknowledged"
        if not self._on_chain(case, officer):
            return None, (
                f"{officer.id} ({officer.role.value}, {officer.unit_id}) is not on the escalation "
                f"chain of {case_id}: not acknowledged"
            )
        try:
            changed = await self._transition(
                case_id,
                Transition.ACKNOWLEDGE,
                {"acknowledged_at": at, "acknowledged_by": actor.model_dump(mode="json")},
                at,
            )
        except CaseNotFound:
            return None, f"no case {case_id}: nothing acknowledged"
        except InvalidTransition as exc:
            return None, f"{case_id} is already {exc.current.value}: nothing to acknowledge"
        event = self._event(
            CaseEventType.ACKNOWLEDGED,
            changed.after,
            actor,
            at,
            data={"via": "reply", "cause": cause},
            event_id=stable_id("case-event", "acknowledged", cause),
        )
        await self.repo.insert_timeline(
            [
                timeline_entry(
                    f"{cause}:ack",
                    case_id,
                    at,
                    CaseEventType.ACKNOWLEDGED.value,
                    actor,
                    None,
                    {"via": "reply", "event_id": cause},
                )
            ]
        )
        return event, f"{case_id} acknowledged by {officer.id} (reply)"

    def _on_chain(self, case: dict[str, Any], person: Person) -> bool:
        assignee = (case.get("assignee") or {}).get("person_id")
        return on_chain(self.org, str(case.get("responsible_unit")), assignee, person.id)

    async def resolve(self, case_id: str, actor: Actor, outcome: str) -> dict[str, Any]:
        at = self.clock.now()
        changed = await self._transition(
            case_id,
            Transition.RESOLVE,
            {
                "resolved_at": at,
                "resolved_day": self._day(at),
                "resolved_by": actor.model_dump(mode="json"),
                "outcome": outcome,
            },
            at,
        )
        reporters = await self.reporters(case_id)
        event = self._event(
            CaseEventType.RESOLVED, changed.after, actor, at, text=outcome, reporters=reporters
        )
        self._forget(changed.before)
        await self._record(changed.after, event, "resolved", outcome, {})
        return changed.after

    async def close(self, case_id: str, actor: Actor, note: str | None) -> dict[str, Any]:
        at = self.clock.now()
        changed = await self._transition(case_id, Transition.CLOSE, {"closed_at": at}, at)
        event = self._event(CaseEventType.CLOSED, changed.after, actor, at, text=note)
        await self._record(changed.after, event, "closed", note, {})
        return changed.after

    async def reopen(self, case_id: str, actor: Actor, reason: str) -> dict[str, Any]:
        at = self.clock.now()
        case = await self.get(case_id)
        assignee = self._assignee_of(case)
        changed = await self._transition(
            case_id,
            Transition.REOPEN,
            {
                "resolved_at": None,
                "resolved_day": None,
                "closed_at": None,
                "acknowledged_at": None,
                "acknowledged_by": None,
                "assigned_at": at,
                "reopened_count": int(case.get("reopened_count", 0)) + 1,
                "last_report_at": at,
            },
            at,
        )
        chain = escalation_chain(
            self.org, str(case["responsible_unit"]), assignee, Priority(case["priority"]), at
        )
        event = self._event(
            CaseEventType.REOPENED,
            changed.after,
            actor,
            at,
            text=reason,
            recipients=chain[0].recipients if chain else [],
            escalation=chain,
        )
        self._remember(changed.after)
        await self._record(changed.after, event, "reopened", reason, {})
        return changed.after

    async def reassign(
        self,
        case_id: str,
        actor: Actor,
        reason: str,
        unit_id: str | None = None,
        person_id: str | None = None,
    ) -> dict[str, Any]:
        at = self.clock.now()
        case = await self.get(case_id)
        person: Person | None
        if person_id is not None:
            person = self.org.people.get(person_id)
            if person is None:
                raise NotFound(f"no person {person_id}")
            if unit_id is not None and person.unit_id != unit_id:
                raise NotFound(f"{person_id} is not a member of {unit_id}")
            unit_id = person.unit_id
        else:
            unit_id = unit_id or str(case["responsible_unit"])
            if unit_id not in self.org.units:
                raise NotFound(f"no unit {unit_id}")
            person = choose(
                on_call(self.org, unit_id, duty_for(self.org, unit_id), at), self.working.loads
            ) or self.org.commander(unit_id)
        changed = await self._transition(
            case_id,
            Transition.REASSIGN,
            {
                "responsible_unit": unit_id,
                "assignee": assignee_doc(person),
                "assigned_at": at,
                "acknowledged_at": None,
                "acknowledged_by": None,
            },
            at,
        )
        chain = escalation_chain(self.org, unit_id, person, Priority(case["priority"]), at)
        event = self._event(
            CaseEventType.REASSIGNED,
            changed.after,
            actor,
            at,
            text=reason,
            recipients=[recipient(person, may_see_reporter=True)],
            escalation=chain,
            data={
                "from_unit": changed.before.get("responsible_unit"),
                "from_person": (changed.before.get("assignee") or {}).get("person_id"),
                "to_unit": unit_id,
                "to_person": person.id,
            },
        )
        self._unload(changed.before)  # still a merge target, with what it learned
        self._remember(changed.after)
        await self._record(
            changed.after, event, "reassigned", reason, {"unit": unit_id, "person": person.id}
        )
        return changed.after

    async def callback_done(
        self, case_id: str, actor: Actor, reached: bool, note: str | None
    ) -> dict[str, Any]:
        at = self.clock.now()
        case = await self.get(case_id)
        if case.get("kind") != "callback":
            raise CaseConflict("this case is not a callback task", str(case["state"]))
        if (case.get("callback") or {}).get("done_at") is not None:
            raise CaseConflict("the callback is already recorded as done", str(case["state"]))
        fields: dict[str, Any] = {
            "callback": {"done_at": at, "by": actor.model_dump(mode="json"), "reached": reached}
        }
        state = CaseState(case["state"])
        if state in (CaseState.NEW, CaseState.ASSIGNED):
            fields.update(acknowledged_at=at, acknowledged_by=actor.model_dump(mode="json"))
            changed = await self._transition(case_id, Transition.ACKNOWLEDGE, fields, at)
        else:
            changed = await self._transition(case_id, None, fields, at, require=set(OPEN_STATES))
        event = self._event(
            CaseEventType.CALLBACK_DONE,
            changed.after,
            actor,
            at,
            text=note,
            data={"reached": reached},
        )
        await self._record(changed.after, event, "callback_done", note, {"reached": reached})
        return changed.after

    async def add_note(self, case_id: str, actor: Actor, text: str) -> dict[str, Any]:
        at = self.clock.now()
        case = await self.get(case_id)
        event = self._event(CaseEventType.NOTE_ADDED, case, actor, at, text=text)
        await self._record(case, event, "note_added", text, {})
        return case

    # ------------------------------------------------------------------ directives

    async def add_directive(
        self, case_id: str, actor: Actor, text: str, deadline: datetime | None
    ) -> dict[str, Any]:
        at = self.clock.now()
        case = await self.get(case_id)
        if case["state"] == CaseState.CLOSED.value:
            raise CaseConflict("a closed case takes no directive; reopen it first", "closed")
        deadline = ensure_utc(deadline) if deadline else at + self.org.routing.default_deadline
        if deadline <= at:
            raise CaseConflict("the report-back deadline must be in the future", case["state"])
        existing = await self.repo.directives_for(case_id)
        directive_id = f"{case_id}-CD{len(existing) + 1}"
        while not await self.repo.claim(f"directive:{directive_id}", at):
            directive_id = f"{directive_id}x"  # a concurrent directive took the number
        recipients = self._directive_recipients(case)
        issuer = DirectiveIssuer.of(actor.role)
        doc = {
            "_id": directive_id,
            "case_id": case_id,
            "text": text,
            "by": actor.model_dump(mode="json"),
            "issued_by": issuer.value,
            "at": at,
            "deadline": deadline,
            "state": "open",
            "unit": case["responsible_unit"],
            "recipients": [r.person_id for r in recipients],
            "reported_at": None,
            "reported_by": None,
            "report": None,
        }
        await self.repo.insert_directive(doc)
        event = self._event(
            CaseEventType.DIRECTIVE_ADDED,
            case,
            actor,
            at,
            text=text,
            deadline=deadline,
            recipients=recipients,
            data={"directive_id": directive_id, "issued_by": issuer.value},
        )
        await self._record(
            case,
            event,
            "directive_added",
            text,
            {
                "directive_id": directive_id,
                "deadline": deadline.isoformat(),
                "issued_by": issuer.value,
            },
        )
        return doc

    async def report_directive(
        self, case_id: str, directive_id: str, actor: Actor, text: str
    ) -> dict[str, Any]:
        at = self.clock.now()
        case = await self.get(case_id)
        directive = await self.repo.get_directive(directive_id)
        if directive is None or directive["case_id"] != case_id:
            raise NotFound(f"no directive {directive_id} on {case_id}")
        if directive["state"] != "open" or not await self.repo.claim(
            f"directive-report:{directive_id}", at
        ):
            raise CaseConflict(f"directive {directive_id} was already reported", case["state"])
        fields = {
            "state": "reported",
            "reported_at": at,
            "reported_by": actor.model_dump(mode="json"),
            "report": text,
        }
        await self.repo.update_directive(directive_id, fields)
        by = directive.get("by") or {}
        issuer = self.org.people.get(str(by.get("id", "")))
        event = self._event(
            CaseEventType.DIRECTIVE_REPORTED,
            case,
            actor,
            at,
            text=text,
            deadline=ensure_utc(directive["deadline"]),
            recipients=[recipient(issuer, may_see_reporter=True)] if issuer else [],
            data={
                "directive_id": directive_id,
                "late": ensure_utc(directive["deadline"]) < at,
            },
        )
        await self._record(case, event, "directive_reported", text, {"directive_id": directive_id})
        return {**directive, **fields}

    def _directive_recipients(self, case: dict[str, Any]) -> list[Recipient]:
        people: list[Person] = [self.org.commander(str(case["responsible_unit"]))]
        assignee = self._assignee_of(case)
        if assignee is not None and assignee.id != people[0].id:
            people.append(assignee)
        return [recipient(p, may_see_reporter=True) for p in people]

    # ------------------------------------------------------- console: triage, merge, split

    async def correct_triage(
        self, case_id: str, actor: Actor, changes: dict[str, Any], reason: str
    ) -> dict[str, Any]:
        """Set the case's category, priority or location and keep the correction for training.

        `changes` holds only the fields the person set (`location` may be None: no district).
        """
        at = self.clock.now()
        case = await self.get(case_id)
        before = _triage_of(case)
        after = {**before, **changes}
        if "category" in changes and "actionable" not in changes:
            after["actionable"] = changes["category"] != "greeting"
        diff = changed_fields(before, after)
        if not diff:
            raise CaseConflict("nothing to change: the triage already says that", case["state"])
        fields = {k: after[k] for k in ("category", "priority", "location")}
        if "location" in diff:
            # The classifier's locality lay in the district the person corrected away from.
            fields.update(locality=None, localities=[])
        changed = await self._transition(case_id, None, fields, at)
        await self._store_correction(
            message_id=str(case.get("opened_by") or case_id),
            case_id=case_id,
            channel=(case.get("reporter") or {}).get("channel"),
            text=str(case.get("text") or ""),
            language=case.get("language"),
            before=before,
            after=after,
            actor=actor,
            reason=reason,
            at=at,
        )
        if CaseState(changed.after["state"]) in OPEN_STATES:
            self.working.index.update(open_case_from_doc(changed.after))
        data = {"before": before, "after": after, "fields": sorted(diff)}
        event = self._event(
            CaseEventType.TRIAGE_CORRECTED, changed.after, actor, at, text=reason, data=data
        )
        await self._record(changed.after, event, "triage_corrected", reason, data)
        return changed.after

    async def correct_message(
        self, event_id: str, actor: Actor, changes: dict[str, Any], reason: str
    ) -> dict[str, Any]:
        """A correction of a message without a case (a greeting that was a report, say). It is
        kept as training data; and when it makes a caseless message actionable, the message
        gets the case it should have had: routed by the corrected category, priority and
        district like any report, assigned to that unit's on-call officer, who is alerted."""
        at = self.clock.now()
        doc = await self.repo.get_decision(event_id)
        if doc is None:
            raise NotFound(f"no message {event_id}")
        before = _triage_of(doc)
        before["actionable"] = doc.get("action") not in ("greeting", "acknowledgement")
        after = {**before, **changes}
        if "category" in changes and "actionable" not in changes:
            after["actionable"] = changes["category"] != "greeting"
        if not changed_fields(before, after):
            raise CaseConflict("nothing to change: the triage already says that", "message")
        correction = await self._store_correction(
            message_id=event_id,
            case_id=doc.get("case_id"),
            channel=doc.get("channel"),
            text=str(doc.get("text") or ""),
            language=doc.get("language"),
            before=before,
            after=after,
            actor=actor,
            reason=reason,
            at=at,
        )
        if after["actionable"] and not doc.get("case_id") and after["category"] != "greeting":
            case = await self._open_corrected(doc, after, actor, reason)
            if case is not None:
                correction["opened_case"] = case["_id"]
                await self.repo.mark_correction(str(correction["_id"]), opened_case=case["_id"])
        return correction

    async def _open_corrected(
        self, doc: dict[str, Any], triage: dict[str, Any], actor: Actor, reason: str
    ) -> dict[str, Any] | None:
        """The case a corrected greeting should have had (once per message)."""
        event_id = str(doc["_id"])
        if not await self.repo.claim(f"corrected-open:{event_id}", self.clock.now()):
            return None  # a concurrent or earlier correction opened it
        category = Category(str(triage["category"]))
        priority = Priority(str(triage["priority"]))
        location = District(str(triage["location"])) if triage.get("location") else None
        routed = route(
            self.org,
            RouteInput(
                category=category,
                priority=priority,
                location=location,
                kind=InboundKind(str(doc.get("kind") or "message")),
                channel=Channel(str(doc.get("channel") or "sms")),
            ),
        )
        text = str(doc.get("text") or "")
        case = await self._open_case(
            doc,
            unit_id=routed.responsible_unit,
            priority=priority,
            category=category.value,
            location=location.value if location else None,
            summary=summary_text(priority, category, location, text),
            text=text,
            opened_by=f"corrected:{event_id}",
            rule=f"corrected:{routed.rule_id}",
            actor=actor,
            reason=reason,
            marks={"corrected_from": str(doc.get("action") or "greeting")},
            timeline=("opened_by_correction", {"event_id": event_id, "rule": routed.rule_id}),
        )
        # The message now counts as the report that opened the case (lists, day figures).
        await self.repo.move_reports([event_id], str(case["_id"]), action="new_case")
        return case

    async def _store_correction(
        self,
        *,
        message_id: str,
        case_id: str | None,
        channel: str | None,
        text: str,
        language: str | None,
        before: dict[str, Any],
        after: dict[str, Any],
        actor: Actor,
        reason: str,
        at: datetime,
    ) -> dict[str, Any]:
        doc = {
            "_id": new_event_id(),
            "message_id": message_id,
            "case_id": case_id,
            "channel": channel,
            "text": text,
            "language": language or "vi",
            "before": before,
            "after": after,
            "by": actor.model_dump(mode="json"),
            "reason": reason,
            "at": at,
        }
        await self.repo.insert_correction(doc)
        return doc

    async def merge(self, case_id: str, into_id: str, actor: Actor, reason: str) -> dict[str, Any]:
        """Fold a case into another: its reports and open directives move, it is closed (its
        escalation stops), and the target takes the more urgent priority of the two."""
        if case_id == into_id:
            raise CaseConflict("a case cannot be merged into itself", "same")
        at = self.clock.now()
        source = await self.get(case_id)
        target = await self.get(into_id)
        if CaseState(target["state"]) == CaseState.CLOSED:
            raise CaseConflict(f"{into_id} is closed; reopen it first", str(target["state"]))
        changed = await self._transition(
            case_id,
            None,
            {
                "state": CaseState.CLOSED.value,
                "closed_at": at,
                "merged_into": into_id,
                "outcome": f"merged into {into_id}",
            },
            at,
            require=set(OPEN_STATES),
        )
        reports = [str(r["_id"]) for r in await self.repo.reports(case_id)]
        await self.repo.move_reports(reports, into_id, merged_from=case_id)
        await self.repo.move_directives(case_id, into_id)
        target_fields: dict[str, Any] = {"last_report_at": at}
        if more_urgent(Priority(source["priority"]), Priority(target["priority"])):
            target_fields["priority"] = source["priority"]
        merged = await self._transition(into_id, None, target_fields, at)
        learned = self.working.index.get(case_id)
        self._forget(changed.before)
        if CaseState(merged.after["state"]) in OPEN_STATES:
            target_entry = open_case_from_doc(merged.after)
            if learned is not None:
                # One incident now: the target takes the merged case's reporters and places.
                same_district = learned.location == target_entry.location
                target_entry = replace(
                    target_entry,
                    reporter_keys=target_entry.reporter_keys | learned.reporter_keys,
                    localities=target_entry.localities
                    | (learned.localities if same_district else frozenset()),
                    addresses=target_entry.addresses | learned.addresses,
                )
            self.working.index.update(target_entry)
        closed_event = self._event(
            CaseEventType.CLOSED,
            changed.after,
            actor,
            at,
            text=reason,
            data={"merged_into": into_id},
        )
        await self._record(
            changed.after,
            closed_event,
            "merged_into",
            reason,
            {"into": into_id, "reports": reports},
        )
        joined = self._event(
            CaseEventType.REPORT_ADDED,
            merged.after,
            actor,
            at,
            text=reason,
            data={"reason": "merged_case", "merged_from": case_id, "reports": reports},
        )
        await self._record(
            merged.after, joined, "merged", reason, {"from": case_id, "reports": reports}
        )
        return merged.after

    async def split(self, case_id: str, event_id: str, actor: Actor, reason: str) -> dict[str, Any]:
        """Take one citizen's report off a case into a case of its own (same unit, its on-call
        officer alerted through a `reassigned` event that starts the new case's chain)."""
        at = self.clock.now()
        case = await self.get(case_id)
        if CaseState(case["state"]) == CaseState.CLOSED:
            raise CaseConflict("a closed case cannot be split; reopen it first", "closed")
        report = await self.repo.get_decision(event_id)
        if report is None or report.get("case_id") != case_id:
            raise NotFound(f"no report {event_id} on {case_id}")
        if report["_id"] == case.get("opened_by"):
            raise CaseConflict("the opening report is the case itself", str(case["state"]))
        if not await self.repo.claim(f"split:{case_id}:{event_id}", at):
            raise CaseConflict(f"report {event_id} was already split off", str(case["state"]))
        text = str(report.get("text") or "")
        if not text:  # decisions stored before the text was kept: the timeline has it
            entry = await self.repo.timeline_entry(f"{event_id}:report")
            text = str((entry or {}).get("text") or "")
        unit_id = str(case["responsible_unit"])
        doc = await self._open_case(
            report,
            unit_id=unit_id,
            priority=Priority(str(report["priority"])),
            category=str(report["category"]),
            location=report.get("location"),
            summary=summary_of(report),
            text=text,
            opened_by=f"split:{event_id}",
            rule="split",
            actor=actor,
            reason=reason,
            marks={"split_from": case_id},
            timeline=("split_from", {"from": case_id}),
        )
        new_id = str(doc["_id"])
        note = self._event(
            CaseEventType.NOTE_ADDED,
            case,
            actor,
            at,
            text=reason,
            data={"split_to": new_id, "event_id": event_id},
        )
        await self._record(case, note, "split", reason, {"to": new_id, "event_id": event_id})
        return doc

    async def _open_case(
        self,
        report: dict[str, Any],
        *,
        unit_id: str,
        priority: Priority,
        category: str,
        location: str | None,
        summary: str,
        text: str,
        opened_by: str,
        rule: str,
        actor: Actor,
        reason: str,
        marks: dict[str, Any],
        timeline: tuple[str, dict[str, Any]],
    ) -> dict[str, Any]:
        """A case of its own for one stored report (a split, a corrected greeting), assigned to
        the unit's on-call officer, who is alerted through a `reassigned` event that starts the
        new case's chain."""
        at = self.clock.now()
        event_id = str(report["_id"])
        person = choose(
            on_call(self.org, unit_id, duty_for(self.org, unit_id), at), self.working.loads
        ) or self.org.commander(unit_id)
        received = ensure_utc(report["at"])
        day = received.astimezone(self.org.province.tz).date()
        prefix = self.org.province.case_prefix
        [number] = await self.repo.allocate_numbers(f"case:{prefix}:{day:%Y%m%d}", 1)
        new_id = format_case_id(prefix, day, number)
        doc: dict[str, Any] = {
            "_id": new_id,
            "number": number,
            "day": day.isoformat(),
            "version": 0,
            "state": CaseState.ASSIGNED.value,
            "kind": "report",
            "category": category,
            "priority": priority.value,
            "location": location,
            "language": report.get("language") or "vi",
            "responsible_unit": unit_id,
            "informed_units": [],
            "assignee": assignee_doc(person),
            "rule": rule,
            "summary": summary,
            "text": text,
            "reporter": report.get("reporter"),
            "reporter_key": report.get("reporter_key"),
            "opened_by": opened_by,
            "opened_at": at,
            "received_at": received,
            "assigned_at": at,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "resolved_at": None,
            "resolved_by": None,
            "outcome": None,
            "closed_at": None,
            "reopened_count": 0,
            "updated_at": at,
            "tokens": [],
            "callback": None,
            **marks,
        }
        await self.repo.insert_cases([doc])
        await self.repo.move_reports([event_id], new_id, **marks)
        self._remember(doc)
        chain = escalation_chain(self.org, unit_id, person, priority, at)
        # The reporter travels with the events: the notifier's alert shows their (masked)
        # contact, and a corrected greeting's citizen gets the receipt they never had.
        reporters = case_reporters([report])
        opened = self._event(
            CaseEventType.OPENED,
            doc,
            actor,
            at,
            text=reason,
            reporters=reporters,
            data={**marks, "event_id": event_id, "responsible_unit": unit_id},
        )
        await self._record(doc, opened, timeline[0], reason, timeline[1])
        alert = self._event(
            CaseEventType.REASSIGNED,
            doc,
            actor,
            at,
            text=reason,
            recipients=[recipient(person, may_see_reporter=True)],
            escalation=chain,
            reporters=reporters,
            data={**marks, "to_unit": unit_id, "to_person": person.id},
        )
        await self._record(doc, alert, "assigned", reason, {"unit": unit_id, "person": person.id})
        return doc

    async def log_call(self, event_id: str, actor: Actor) -> dict[str, Any]:
        """Put "this call was logged by <actor>" on the case a desk call summary opened or
        joined, for a desk client that did not name the person in the summary (the console
        does: then the dispatcher recorded it from the event and this is a no-op). Idempotent."""
        decision = await self.repo.get_decision(event_id)
        if decision is None:
            raise NotFound(f"no message {event_id} yet")
        if decision.get("channel") != "desk":
            raise CaseConflict("only calls logged at the desk are attributed", "not_desk")
        case_id = decision.get("case_id")
        if case_id:
            case = await self.get(str(case_id))
            at = self.clock.now()
            event = self._event(
                CaseEventType.NOTE_ADDED,
                case,
                actor,
                at,
                data={"logged_call": event_id},
                event_id=stable_id("call-logged", event_id),
            )
            recorded = await self.repo.timeline_entry(call_logged_entry_id(event_id))
            if recorded is None and await self.repo.timeline_entry(f"ce:{event.event_id}") is None:
                await self._record(case, event, "call_logged", None, {"event_id": event_id})
        return decision

    # ------------------------------------------------------------------ shift overrides

    async def add_shift_override(
        self,
        actor: Actor,
        unit_id: str,
        duty: str,
        person_id: str,
        replaces_id: str | None,
        start: datetime,
        end: datetime,
        reason: str,
    ) -> dict[str, Any]:
        role = validate(self.org, unit_id, duty, person_id, replaces_id, start, end)
        doc = {
            "_id": new_event_id(),
            "unit_id": unit_id,
            "duty": role.value,
            "person_id": person_id,
            "replaces_id": replaces_id,
            "start": ensure_utc(start),
            "end": ensure_utc(end),
            "reason": reason,
            "by": actor.model_dump(mode="json"),
            "at": self.clock.now(),
            "cancelled_at": None,
            "cancelled_by": None,
        }
        await self.repo.insert_shift_override(doc)
        await self.refresh_shifts()
        log.info(
            "shift override added",
            extra={"override_id": doc["_id"], "unit": unit_id, "duty": role.value},
        )
        return doc

    async def cancel_shift_override(self, override_id: str, actor: Actor) -> dict[str, Any]:
        doc = await self.repo.get_shift_override(override_id)
        if doc is None:
            raise NotFound(f"no shift override {override_id}")
        if doc.get("cancelled_at") is None:
            at = self.clock.now()
            by = actor.model_dump(mode="json")
            await self.repo.cancel_shift_override(override_id, at, by)
            doc = {**doc, "cancelled_at": at, "cancelled_by": by}
        await self.refresh_shifts()
        return doc

    async def refresh_shifts(self) -> int:
        return await self.shifts.refresh(self.repo, self.clock.now())

    # ------------------------------------------------------------------ other services' events

    async def apply_case_event(self, event: CaseEvent) -> None:
        """Record a case event another service published (the notifier's acks, escalations)."""
        if event.source == "dispatcher":
            return
        case = await self.repo.get_case(event.case_id)
        if case is None:
            log.warning("case event for an unknown case", extra={"case_id": event.case_id})
            return
        at = ensure_utc(event.at)
        applied = False
        if event.type == CaseEventType.ACKNOWLEDGED:
            try:
                await self._transition(
                    event.case_id,
                    Transition.ACKNOWLEDGE,
                    {"acknowledged_at": at, "acknowledged_by": event.actor.model_dump(mode="json")},
                    at,
                )
                applied = True
            except InvalidTransition:
                applied = False
        data = {**event.data, "source": event.source, "event_id": event.event_id}
        if event.type == CaseEventType.ACKNOWLEDGED:
            data["applied"] = applied
        await self.repo.insert_timeline(
            [
                timeline_entry(
                    f"ce:{event.event_id}",
                    event.case_id,
                    at,
                    event.type.value,
                    event.actor,
                    event.text,
                    data,
                )
            ]
        )

    async def record_delivery(self, outcome: DeliveryOutcome) -> None:
        """Put a notification's outcome on its case's timeline (addresses stay masked)."""
        await self.record_deliveries([outcome])

    async def record_deliveries(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        """`record_delivery` for a poll's worth of outcomes: one insert for all of them."""
        entries = [delivery_entry(o) for o in outcomes if o.case_id]
        if entries:
            await self.repo.insert_timeline(entries)

    # ------------------------------------------------------------------ maintenance

    async def maintenance(self, *, gauges: bool = True) -> dict[str, int]:
        """One round of periodic work; each part tolerates the others failing.

        `gauges=False` leaves out the gauges (a read of every open case), which the service's
        loop refreshes with the working set instead.
        """
        summary: dict[str, int] = {}
        steps: list[tuple[str, Callable[[], Awaitable[int]]]] = [
            ("priorities", self.repo.apply_priority_raises),
            ("outbox", self.flush_outbox),
            ("reminders", self.send_reminders),
            ("shifts", self.refresh_shifts),
        ]
        if gauges:
            steps.insert(3, ("gauges", self.refresh_gauges))
        for name, step in steps:
            try:
                summary[name] = await step()
            except Exception as exc:
                log.warning("maintenance step failed", extra={"step": name, "error": repr(exc)})
        return summary

    async def send_reminders(self) -> int:
        """A reminder per overdue directive per reminder interval (claimed once)."""
        now = self.clock.now()
        interval = self.org.routing.reminder_interval
        overdue = 0
        sent = 0
        for directive in await self.repo.open_directives():
            deadline = ensure_utc(directive["deadline"])
            if deadline > now:
                continue
            overdue += 1
            step = int((now - deadline) / interval)
            if not await self.repo.claim(f"reminder:{directive['_id']}:{step}", now):
                continue
            case = await self.repo.get_case(str(directive["case_id"]))
            if case is None:
                continue
            text = str(directive["text"])
            event = self._event(
                CaseEventType.REMINDER_DUE,
                case,
                Actor(id="dispatcher", role="service"),
                now,
                text=text,
                deadline=deadline,
                recipients=self._directive_recipients(case),
                data={
                    "directive_id": directive["_id"],
                    "issued_by": directive_issuer(directive).value,
                    "overdue_s": int((now - deadline).total_seconds()),
                    "reminder": step + 1,
                },
                event_id=stable_id("reminder", str(directive["_id"]), str(step)),
            )
            await self._record(
                case,
                event,
                "reminder_due",
                text,
                {"directive_id": directive["_id"], "reminder": step + 1},
            )
            sent += 1
        metrics.OVERDUE_DIRECTIVES.set(overdue)
        return sent

    async def refresh_gauges(self, open_docs: list[dict[str, Any]] | None = None) -> int:
        """Open cases by unit and priority, unacknowledged overdue cases, per-person loads
        (from `open_docs` when the caller has just read them)."""
        now = self.clock.now()
        if open_docs is None:
            open_docs = await self.working.refresh_loads(self.repo)
        counts: Counter[tuple[str, str]] = Counter()
        overdue: Counter[str] = Counter()
        for doc in open_docs:
            counts[(str(doc.get("responsible_unit")), str(doc.get("priority")))] += 1
            if doc.get("state") == CaseState.ASSIGNED.value and doc.get("assigned_at"):
                prio = Priority(doc["priority"])
                timeout = self.org.routing.timeouts_s.get(prio)
                if timeout and ensure_utc(doc["assigned_at"]) < now - timedelta(seconds=timeout):
                    overdue[prio.value] += 1
        for unit in self.org.units:
            for prio in (Priority.P1, Priority.P2, Priority.P3):
                metrics.OPEN_CASES.labels(unit, prio.value).set(counts.get((unit, prio.value), 0))
        for prio in (Priority.P1, Priority.P2, Priority.P3):
            metrics.UNACKNOWLEDGED_OVERDUE.labels(prio.value).set(overdue.get(prio.value, 0))
        return len(open_docs)

    async def flush_outbox(self, min_age: timedelta = timedelta(seconds=5)) -> int:
        """Publish case events whose first publish failed (or whose deletion did)."""
        if self.publisher is None:
            return 0
        pending = await self.repo.outbox_pending(self.clock.now() - min_age)
        if not pending:
            return 0
        outs = [
            Outgoing(topic=str(p["topic"]), value=str(p["value"]).encode(), key=p.get("key"))
            for p in pending
        ]
        await self.publisher.publish_many(outs)
        await self.repo.outbox_remove([str(p["_id"]) for p in pending])
        return len(pending)

    # ------------------------------------------------------------------ helpers

    async def reporters(self, case_id: str) -> list[Reporter]:
        """Every citizen who reported on the case, once each (see `case_reporters`)."""
        return case_reporters(await self.repo.reports(case_id))

    def _assignee_of(self, case: dict[str, Any]) -> Person | None:
        pid = (case.get("assignee") or {}).get("person_id")
        return self.org.people.get(str(pid)) if pid else None

    def _forget(self, case: dict[str, Any]) -> None:
        """The case is over (resolved, merged away): no longer a merge target or a load."""
        self.working.index.remove(str(case["_id"]))
        self._unload(case)

    def _unload(self, case: dict[str, Any]) -> None:
        """The case left its assignee."""
        pid = (case.get("assignee") or {}).get("person_id")
        if pid and self.working.loads.get(str(pid), 0) > 0:
            self.working.loads[str(pid)] -= 1

    def _remember(self, case: dict[str, Any]) -> None:
        if CaseState(case["state"]) in OPEN_STATES:
            self.working.index.update(open_case_from_doc(case))
        pid = (case.get("assignee") or {}).get("person_id")
        if pid:
            self.working.loads[str(pid)] += 1

    def _day(self, at: datetime) -> str:
        return at.astimezone(self.org.province.tz).date().isoformat()

    def _event(
        self,
        type_: CaseEventType,
        case: dict[str, Any],
        actor: Actor,
        at: datetime,
        *,
        text: str | None = None,
        deadline: datetime | None = None,
        recipients: list[Recipient] | None = None,
        escalation: list[Any] | None = None,
        reporters: list[Reporter] | None = None,
        data: dict[str, Any] | None = None,
        event_id: str | None = None,
    ) -> CaseEvent:
        return CaseEvent(
            event_id=event_id or new_event_id(),
            case_id=str(case["_id"]),
            type=type_,
            source="dispatcher",
            actor=actor,
            at=at,
            case_state=str(case["state"]),
            priority=Priority(case["priority"]),
            text=text,
            deadline=deadline,
            recipients=recipients or [],
            escalation=escalation or [],
            reporters=reporters or [],
            data=data or {},
        )

    async def _record(
        self,
        case: dict[str, Any],
        event: CaseEvent,
        entry_type: str,
        text: str | None,
        data: dict[str, Any],
    ) -> None:
        """Timeline entry + outbox record, then publish (a failed publish is retried later)."""
        record: dict[str, Any] = {
            "_id": event.event_id,
            "topic": self.topics.case_events,
            "key": event.case_id,
            "value": event.model_dump_json(),
            "at": event.at,
        }
        entry = timeline_entry(
            f"ce:{event.event_id}",
            str(case["_id"]),
            ensure_utc(event.at),
            entry_type,
            event.actor,
            text,
            # The case event's id, unless the entry is about a report (`event_id` in `data`:
            # the report split off, the call logged), whose id is the one a reader needs.
            {"event_id": event.event_id, **data},
        )
        await asyncio.gather(self.repo.insert_timeline([entry]), self.repo.outbox_add([record]))
        if self.publisher is None:
            return
        try:
            await self.publisher.publish(
                Outgoing(
                    topic=self.topics.case_events, value=record["value"].encode(), key=event.case_id
                )
            )
        except PublishError as exc:
            log.warning(
                "case event not published yet; the outbox retries",
                extra={"case_id": event.case_id, "error": str(exc)[:200]},
            )
            return
        await self.repo.outbox_remove([event.event_id])


def delivery_entry(outcome: DeliveryOutcome) -> dict[str, Any]:
    """The timeline entry of a delivery outcome (deterministic id: a repeat is a duplicate)."""
    assert outcome.case_id is not None
    return timeline_entry(
        f"dlv:{outcome.delivery_id}:{outcome.status.value}:{outcome.attempts}",
        outcome.case_id,
        ensure_utc(outcome.at),
        "delivery",
        Actor(id="notifier", role="service"),
        None,
        {
            "delivery_id": outcome.delivery_id,
            "purpose": outcome.purpose.value,
            "level": outcome.level,
            "recipient_id": outcome.recipient_id,
            "recipient_role": outcome.recipient_role,
            "channel": outcome.channel,
            "address_masked": outcome.address_masked,
            "status": outcome.status.value,
            "attempts": outcome.attempts,
            "error": outcome.error,
            "first_alert": outcome.first_alert,
        },
    )


def _triage_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The triage fields of a case or a stored decision."""
    return {
        "category": doc.get("category"),
        "actionable": doc.get("category") != "greeting",
        "priority": doc.get("priority"),
        "location": doc.get("location"),
    }


def directive_issuer(directive: dict[str, Any]) -> DirectiveIssuer:
    """Whose directive a stored one is (documents older than `issued_by`: from who recorded it)."""
    if "issued_by" in directive:
        return DirectiveIssuer.read(directive["issued_by"])
    return DirectiveIssuer.of(str((directive.get("by") or {}).get("role", "")))


def case_reporters(reports: Sequence[dict[str, Any]]) -> list[Reporter]:
    """Every citizen among these stored reports (decision documents), once each, in order.

    A citizen is answered on the channel of their first report; `last_message_at` is their
    latest report on that channel (WhatsApp takes free text only within 24 h of it, so a
    closure days later goes as the approved template and one within the day as text).
    """
    seen: dict[str, Reporter] = {}
    for doc in reports:
        raw = doc.get("reporter")
        if not raw:
            continue
        key = str(doc.get("reporter_key"))
        reporter = seen.get(key) or Reporter.model_validate(raw)
        seen[key] = reporter
        at = doc.get("at")
        if at is not None and doc.get("channel") == reporter.channel.value:
            at = ensure_utc(at)
            if reporter.last_message_at is None or at > reporter.last_message_at:
                reporter.last_message_at = at
    return list(seen.values())
