"""Assignment (pure): who is on call in a unit at a moment, who gets the case, who escalates.

Rosters (`config.Roster`) say, per shift, who is on call on each day of a rotation cycle; a
shift belongs to the local date it starts on, so at 02:00 on the 25th the night shift of the
24th (19:00-07:00) is the one on call. Overrides then swap or add people for a time window.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from hotline.contracts.events import EscalationLevel, Recipient, Role
from hotline.contracts.labels import Priority
from hotline_dispatcher.config import Organisation, Person, Roster

# Escalation after the assignee, in order (architecture: officer → unit commander → Staff Office
# duty leader → Director).
CHAIN_ROLES = (Role.COMMANDER, Role.STAFF_LEADER, Role.DIRECTOR)


def _on_call(roster: Roster, local: datetime) -> list[str]:
    ids: list[str] = []
    naive = local.replace(tzinfo=None)
    for days_back in (1, 0):
        shift_day = naive.date() - timedelta(days=days_back)
        cycle = roster.days[(shift_day - roster.anchor).days % len(roster.days)]
        for shift in roster.shifts:
            start = datetime.combine(shift_day, shift.start)
            if start <= naive < start + shift.duration:
                ids.extend(cycle.get(shift.id, ()))
    for override in roster.overrides:
        if override.start <= local < override.end:
            if override.replaces_id is not None:
                ids = [override.officer_id if i == override.replaces_id else i for i in ids]
            else:
                ids.append(override.officer_id)
    return list(dict.fromkeys(ids))


def on_call(org: Organisation, unit_id: str, duty: Role, at: datetime) -> list[Person]:
    """The people of `unit_id` on `duty` at `at`; the commander when the unit has no roster."""
    roster = org.rosters.get((unit_id, duty))
    if roster is None:
        return [org.commander(unit_id)] if unit_id in org.units else []
    local = at.astimezone(org.province.tz)
    return [org.people[pid] for pid in _on_call(roster, local)]


def duty_for(org: Organisation, unit_id: str) -> Role:
    """Which roster answers for a unit's cases: call-takers in the Staff Office, else officers."""
    if unit_id == org.routing.staff_office_id and (unit_id, Role.OFFICER) not in org.rosters:
        return Role.CALL_TAKER
    return Role.OFFICER


def choose(candidates: list[Person], open_cases: Mapping[str, int]) -> Person | None:
    """The candidate with the fewest open cases; roster order breaks ties."""
    if not candidates:
        return None
    return min(enumerate(candidates), key=lambda ic: (open_cases.get(ic[1].id, 0), ic[0]))[1]


def recipient(person: Person, may_see_reporter: bool) -> Recipient:
    return Recipient(
        person_id=person.id,
        name=person.name,
        rank=person.rank,
        role=person.role,
        unit_id=person.unit_id,
        contacts=list(person.contacts),
        may_see_reporter=may_see_reporter,
    )


def escalation_chain(
    org: Organisation,
    unit_id: str,
    assignee: Person | None,
    priority: Priority,
    at: datetime,
) -> list[EscalationLevel]:
    """Assignee → unit commander → Staff Office duty leader → Director; nobody twice.

    Everyone on the chain belongs to the responsible unit or stands above it, so everyone on
    it may see the reporter's contact. Each level waits the priority's timeout for an ack.
    """
    timeout = org.routing.timeouts_s.get(priority) or org.routing.timeouts_s[Priority.P3]
    people: list[Person] = []
    if assignee is not None:
        people.append(assignee)
    people.append(org.commander(unit_id))
    leaders = on_call(org, org.routing.staff_office_id, Role.STAFF_LEADER, at)
    if leaders:
        people.append(leaders[0])
    people.append(org.director)
    levels: list[EscalationLevel] = []
    seen: set[str] = set()
    for person in people:
        if person.id in seen:
            continue
        seen.add(person.id)
        role = person.role if person is not assignee else _assignee_role(person)
        levels.append(
            EscalationLevel(
                level=len(levels),
                role=role,
                recipients=[recipient(person, may_see_reporter=True)],
                timeout_s=timeout,
            )
        )
    return levels


def on_chain(org: Organisation, unit_id: str, assignee_id: str | None, person_id: str) -> bool:
    """Whether a person is on the escalation chain of a case of `unit_id` assigned to
    `assignee_id`: its assignee, the unit's commander, a Staff Office duty leader, the Director.

    The one definition of "the people who answer for a case": who may acknowledge it by a
    reply, and (in the ops API) who below the staff role may act on it and see its reporter.
    """
    if assignee_id is not None and person_id == assignee_id:
        return True
    person = org.people.get(person_id)
    if person is None:
        return False
    unit = org.units.get(unit_id)
    return (
        (unit is not None and person.id == unit.commander_id)
        or person.id == org.routing.director_id
        or (person.unit_id == org.routing.staff_office_id and person.role == Role.STAFF_LEADER)
    )


def _assignee_role(person: Person) -> Role:
    return Role.CALL_TAKER if person.role == Role.CALL_TAKER else Role.OFFICER


def informed_recipients(org: Organisation, unit_ids: list[str], at: datetime) -> list[Recipient]:
    """One person per informed unit: its on-call officer, else its commander.

    Informed units see the report but not who reported it; the Director (above every unit)
    may see the reporter.
    """
    out: list[Recipient] = []
    for unit_id in unit_ids:
        if unit_id == org.director.unit_id:
            out.append(recipient(org.director, may_see_reporter=True))
            continue
        people = on_call(org, unit_id, duty_for(org, unit_id), at) or [org.commander(unit_id)]
        out.append(recipient(people[0], may_see_reporter=False))
    return out
