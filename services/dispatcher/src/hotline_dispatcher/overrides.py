"""Shift overrides made at run time by the Staff Office (đổi ca, tăng cường trực).

The YAML rosters are the plan; an override made in the console swaps a person in for someone
(`replaces_id`) or adds one to a unit's duty for a time window. Overrides live in the
`shift_overrides` collection and are applied on top of the YAML rosters: the roster objects in
`Organisation.rosters` are replaced by copies whose `overrides` are the YAML ones followed by
the run-time ones, so `assignment.on_call` (pure) sees both without knowing where they came
from. Each replica reloads them at start-up, after its own API changes and every maintenance
round, so another replica's override is applied within `DISPATCHER_MAINTENANCE_INTERVAL_S`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from hotline.clock import ensure_utc
from hotline.contracts.events import Role
from hotline_dispatcher.config import Organisation, Override, Roster
from hotline_dispatcher.repository import Repository


class InvalidOverride(ValueError):
    """An override that names an unknown unit, duty or person, or an empty window."""


def validate(
    org: Organisation,
    unit_id: str,
    duty: str,
    person_id: str,
    replaces_id: str | None,
    start: datetime,
    end: datetime,
) -> Role:
    """The duty as a Role, or InvalidOverride saying what is wrong (pure)."""
    if unit_id not in org.units:
        raise InvalidOverride(f"no unit {unit_id}")
    try:
        role = Role(duty)
    except ValueError as exc:
        raise InvalidOverride(f"no duty {duty}") from exc
    if (unit_id, role) not in org.rosters:
        duties = sorted(d.value for (u, d) in org.rosters if u == unit_id)
        raise InvalidOverride(
            f"{unit_id} has no {duty} roster (its rosters: {', '.join(duties) or 'none'})"
        )
    if person_id not in org.people:
        raise InvalidOverride(f"no person {person_id}")
    if replaces_id is not None:
        replaced = org.people.get(replaces_id)
        if replaced is None or replaced.unit_id != unit_id:
            raise InvalidOverride(f"{replaces_id} is not a member of {unit_id}")
        if replaces_id == person_id:
            raise InvalidOverride("a person cannot replace themselves")
    if ensure_utc(end) <= ensure_utc(start):
        raise InvalidOverride("the override ends before it starts")
    return role


def to_override(doc: dict[str, Any]) -> Override:
    return Override(
        start=ensure_utc(doc["start"]),
        end=ensure_utc(doc["end"]),
        officer_id=str(doc["person_id"]),
        replaces_id=doc.get("replaces_id"),
        reason=str(doc.get("reason") or ""),
    )


class ShiftOverrides:
    """Keeps `org.rosters` = the YAML rosters + the stored run-time overrides."""

    def __init__(self, org: Organisation) -> None:
        self.org = org
        self.base: dict[tuple[str, Role], Roster] = dict(org.rosters)
        self.active: list[dict[str, Any]] = []

    def apply(self, docs: Iterable[dict[str, Any]]) -> None:
        extra: dict[tuple[str, Role], list[Override]] = {}
        kept: list[dict[str, Any]] = []
        for doc in docs:
            key = (str(doc["unit_id"]), Role(str(doc["duty"])))
            if key not in self.base or doc.get("cancelled_at") is not None:
                continue
            extra.setdefault(key, []).append(to_override(doc))
            kept.append(doc)
        for key, roster in self.base.items():
            added = tuple(sorted(extra.get(key, []), key=lambda o: o.start))
            self.org.rosters[key] = (
                replace(roster, overrides=roster.overrides + added) if added else roster
            )
        self.active = kept

    async def refresh(self, repo: Repository, now: datetime) -> int:
        """Reload the overrides that are not over yet; returns how many apply."""
        self.apply(await repo.shift_overrides(ending_after=now))
        return len(self.active)
