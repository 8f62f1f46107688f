"""Routing (pure): category × priority × location → responsible unit and informed units.

The rules come from `routing.yaml` (see `config.Rule`): the first matching rule with a
`responsible` unit decides who responds; rules without one add informed units whenever they
match. Tokens (`district`, `department`, `departments`, `staff_office`, `director`) resolve
against the organisation; a rule whose responsible token cannot resolve (no location, no
specialised department) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.contracts.labels import Category, Channel, District, InboundKind, Priority
from hotline_dispatcher.config import Organisation, Rule, When


@dataclass(frozen=True)
class RouteResult:
    responsible_unit: str
    informed_units: tuple[str, ...]
    rule_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RouteInput:
    category: Category
    priority: Priority
    location: District | None
    kind: InboundKind = InboundKind.MESSAGE
    channel: Channel = Channel.SMS


def matches(when: When, item: RouteInput) -> bool:
    if when.priorities is not None and item.priority not in when.priorities:
        return False
    if when.categories is not None and item.category not in when.categories:
        return False
    if when.kinds is not None and item.kind not in when.kinds:
        return False
    if when.channels is not None and item.channel not in when.channels:
        return False
    if when.location == "known":
        return item.location is not None
    if when.location == "unknown":
        return item.location is None
    if when.location is not None:
        return item.location in when.location
    return True


def _resolve(org: Organisation, ref: str, item: RouteInput) -> list[str]:
    """Unit ids a unit reference stands for in this report (empty when it cannot apply)."""
    if ref == "district":
        unit = org.district_police.get(item.location) if item.location else None
        return [unit] if unit else []
    if ref == "department":
        return list(org.departments.get(item.category, ())[:1])
    if ref == "departments":
        return list(org.departments.get(item.category, ()))
    if ref == "staff_office":
        return [org.routing.staff_office_id]
    if ref == "director":
        return [org.director.unit_id]
    return [ref]


def route(org: Organisation, item: RouteInput) -> RouteResult:
    """Who responds to a report and who is informed, with the reasons in words."""
    responsible: str | None = None
    deciding: Rule | None = None
    reasons: list[str] = []
    informed: list[str] = []
    for rule in org.routing.rules:
        if not matches(rule.when, item):
            continue
        if rule.responsible is None:
            for ref in rule.inform:
                for unit in _resolve(org, ref, item):
                    informed.append(unit)
                    reasons.append(f"rule {rule.id}: {unit} informed")
            continue
        if deciding is not None:
            continue
        units = _resolve(org, rule.responsible, item)
        if not units:
            continue
        responsible, deciding = units[0], rule
        where = f" in {item.location.value}" if item.location else " (no location)"
        reasons.insert(
            0,
            f"rule {rule.id}: {item.priority.value} {item.category.value}{where} → "
            f"{responsible} responds",
        )
        for ref in rule.inform:
            for unit in _resolve(org, ref, item):
                informed.append(unit)
                reasons.append(f"rule {rule.id}: {unit} informed")
    if responsible is None or deciding is None:  # validation guarantees a fallback rule
        responsible = org.routing.staff_office_id
        reasons.insert(0, "no rule matched → the Staff Office decides")
        rule_id = "fallback"
    else:
        rule_id = deciding.id
    unique = tuple(dict.fromkeys(u for u in informed if u != responsible))
    return RouteResult(responsible, unique, rule_id, tuple(reasons))
