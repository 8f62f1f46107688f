"""The organisation as configuration: units, people, on-call rosters and routing rules (YAML).

Three files, each replaceable by a Kubernetes ConfigMap (paths in `DispatcherSettings`):

* `organisation.yaml` — the province, its units (Directorate, Staff Office, district police,
  specialised departments) and their members with contact channels in preference order;
* `rosters.yaml` — per unit and duty (officer, call_taker, staff_leader) the shifts in local
  time, a rotation of who is on call, and overrides (swaps, reinforcements);
* `routing.yaml` — routing rules, escalation timeouts, merge and directive settings.

`load_organisation` validates all three together and raises `ConfigError` listing every
problem as `file:line: message`, so the service refuses to start with an error that says where
to look (an unknown district, a shift gap, an officer without a contact channel, an unknown
unit in a rule...). The result is an immutable `Organisation` with the look-ups the routing
and assignment code needs precomputed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hotline.contracts.events import Contact, Role
from hotline.contracts.labels import Category, Channel, District, InboundKind, Priority

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent / "config"

UnitKind = Literal["leadership", "staff_office", "district", "department"]
ContactChannel = Literal["sms", "zalo", "viber", "whatsapp", "telegram", "email", "webhook"]

RESPONSIBLE_TOKENS = frozenset({"district", "department", "staff_office"})
INFORM_TOKENS = frozenset({"district", "department", "departments", "staff_office", "director"})
LOCATION_TOKENS = frozenset({"known", "unknown"})

_T = TypeVar("_T", bound=BaseModel)
_E = TypeVar("_E", Priority, Category, InboundKind, Channel)


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; `issues` name each problem's file and line."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        lines = "\n  ".join(str(i) for i in issues)
        super().__init__(f"invalid dispatcher configuration ({len(issues)} problem(s)):\n  {lines}")


# --------------------------------------------------------------------------- YAML with lines


class _Source:
    """One YAML file: its data and the line of every key/item, for error messages."""

    def __init__(self, path: Path, issues: list[ConfigIssue]) -> None:
        self.path = path
        self.name = path.name
        self.data: Any = None
        self.lines: dict[tuple[str, ...], int] = {}
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            issues.append(ConfigIssue(str(path), None, f"cannot read: {exc.strerror or exc}"))
            return
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.load(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            issues.append(ConfigIssue(self.name, line, f"not valid YAML: {problem}"))
            return
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                self.lines[sub] = key.start_mark.line + 1
                self._index(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*path, str(i)))

    def line(self, *path: object) -> int | None:
        """The line of the deepest known prefix of `path`."""
        parts = tuple(str(p) for p in path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get(())

    def issue(self, issues: list[ConfigIssue], path: tuple[object, ...], message: str) -> None:
        issues.append(ConfigIssue(self.name, self.line(*path), message))


# --------------------------------------------------------------------------- raw file models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactFile(_Strict):
    channel: ContactChannel
    address: str = Field(min_length=1)


class PersonFile(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    rank: str | None = None
    role: Role
    title: str | None = None
    contacts: list[ContactFile] = Field(default_factory=list)


class UnitFile(_Strict):
    id: str = Field(min_length=1)
    code: str
    kind: UnitKind
    name_vi: str
    name_en: str
    jurisdiction: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    commander: str
    members: list[PersonFile] = Field(min_length=1)


class ProvinceFile(_Strict):
    id: str
    name_vi: str
    name_en: str
    case_prefix: str = Field(pattern=r"^[A-Z]{2,6}$")
    timezone: str = "Asia/Ho_Chi_Minh"
    hotline: str | None = None


class OrganisationFile(_Strict):
    province: ProvinceFile
    units: list[UnitFile] = Field(min_length=1)


class ShiftFile(_Strict):
    id: str = Field(min_length=1)
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class RotationFile(_Strict):
    anchor: date
    days: list[dict[str, list[str]]] = Field(min_length=1)


class OverrideFile(_Strict):
    start: datetime
    end: datetime
    officer: str
    replaces: str | None = None
    reason: str = ""


class RosterFile(_Strict):
    unit: str
    duty: Role = Role.OFFICER
    shifts: list[ShiftFile] = Field(min_length=1)
    rotation: RotationFile
    overrides: list[OverrideFile] = Field(default_factory=list)


class RostersFile(_Strict):
    rosters: list[RosterFile] = Field(min_length=1)


class WhenFile(_Strict):
    priority: list[str] | None = None
    category: list[str] | None = None
    location: str | list[str] | None = None
    kind: list[str] | None = None
    channel: list[str] | None = None


class RuleFile(_Strict):
    id: str = Field(min_length=1)
    when: WhenFile = Field(default_factory=WhenFile)
    responsible: str | None = None
    inform: list[str] = Field(default_factory=list)


class CallbackFile(_Strict):
    unit: str
    duty: Role = Role.CALL_TAKER


class MergeFile(_Strict):
    window_s: int = Field(default=7200, gt=0)
    similarity: float = Field(default=0.5, gt=0, le=1)
    followup_window_s: int = Field(default=86400, gt=0)


class DirectivesFile(_Strict):
    reminder_interval_s: int = Field(default=3600, gt=0)
    default_deadline_s: int = Field(default=86400, gt=0)


class RoutingFile(_Strict):
    staff_office: str
    director: str
    callback: CallbackFile
    timeouts_s: dict[str, int]
    merge: MergeFile = Field(default_factory=MergeFile)
    directives: DirectivesFile = Field(default_factory=DirectivesFile)
    rules: list[RuleFile] = Field(min_length=1)


# --------------------------------------------------------------------------- the organisation


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    rank: str | None
    role: Role
    unit_id: str
    title: str | None
    contacts: tuple[Contact, ...]


@dataclass(frozen=True)
class Unit:
    id: str
    code: str
    kind: UnitKind
    name_vi: str
    name_en: str
    jurisdiction: tuple[District, ...]
    categories: tuple[Category, ...]
    commander_id: str
    member_ids: tuple[str, ...]


@dataclass(frozen=True)
class Shift:
    id: str
    start: time
    end: time

    @property
    def duration(self) -> timedelta:
        """Length of the shift; an end at or before the start crosses midnight."""
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        minutes = (end - start) % (24 * 60) or 24 * 60
        return timedelta(minutes=minutes)


@dataclass(frozen=True)
class Override:
    start: datetime  # aware, local time zone
    end: datetime
    officer_id: str
    replaces_id: str | None
    reason: str


@dataclass(frozen=True)
class Roster:
    unit_id: str
    duty: Role
    shifts: tuple[Shift, ...]
    anchor: date
    days: tuple[dict[str, tuple[str, ...]], ...]
    overrides: tuple[Override, ...]


@dataclass(frozen=True)
class When:
    priorities: frozenset[Priority] | None = None
    categories: frozenset[Category] | None = None
    location: Literal["known", "unknown"] | frozenset[District] | None = None
    kinds: frozenset[InboundKind] | None = None
    channels: frozenset[Channel] | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    when: When
    responsible: str | None
    inform: tuple[str, ...]


@dataclass(frozen=True)
class MergeSettings:
    window: timedelta
    similarity: float
    followup_window: timedelta


@dataclass(frozen=True)
class Routing:
    staff_office_id: str
    director_id: str
    callback_unit_id: str
    callback_duty: Role
    timeouts_s: dict[Priority, int]
    merge: MergeSettings
    reminder_interval: timedelta
    default_deadline: timedelta
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Province:
    id: str
    name_vi: str
    name_en: str
    case_prefix: str
    tz: ZoneInfo
    hotline: str | None


@dataclass(frozen=True)
class Organisation:
    """The validated organisation, rosters and routing, with precomputed look-ups."""

    province: Province
    units: dict[str, Unit]
    people: dict[str, Person]
    rosters: dict[tuple[str, Role], Roster]
    routing: Routing
    district_police: dict[District, str]
    departments: dict[Category, tuple[str, ...]]
    contact_index: dict[tuple[str, str], str] = field(default_factory=dict)
    phone_index: dict[str, str] = field(default_factory=dict)

    @property
    def director(self) -> Person:
        return self.people[self.routing.director_id]

    @property
    def staff_office(self) -> Unit:
        return self.units[self.routing.staff_office_id]

    def unit(self, unit_id: str) -> Unit:
        return self.units[unit_id]

    def commander(self, unit_id: str) -> Person:
        return self.people[self.units[unit_id].commander_id]

    def person_by_contact(
        self, channel: str, user_id: str | None, phone: str | None
    ) -> Person | None:
        """The member who sent a message: by (channel, address), else by phone number."""
        if user_id:
            pid = self.contact_index.get((channel, user_id))
            if pid:
                return self.people[pid]
        for raw in (phone, user_id):
            if raw:
                pid = self.phone_index.get(normalise_phone(raw) or "")
                if pid:
                    return self.people[pid]
        return None


_DIGITS = re.compile(r"\d")


def normalise_phone(value: str) -> str | None:
    """E.164 digits for Vietnamese numbers: '0919.69.75.75' and '+84919697575' → '84919697575'."""
    digits = "".join(_DIGITS.findall(value))
    if len(digits) < 9 or any(c.isalpha() for c in value):
        return None
    if digits.startswith("0"):
        digits = "84" + digits[1:]
    return digits


# --------------------------------------------------------------------------- loading


def default_paths() -> tuple[Path, Path, Path]:
    return (
        DEFAULT_CONFIG_DIR / "organisation.yaml",
        DEFAULT_CONFIG_DIR / "rosters.yaml",
        DEFAULT_CONFIG_DIR / "routing.yaml",
    )


def write_routing_variant(
    path: Path,
    *,
    timeouts_s: Mapping[str, int] | None = None,
    merge_similarity: float | None = None,
    base: Path | None = None,
) -> Path:
    """Write a copy of the routing file (`base`, default the packaged one) to `path` with other
    acknowledgement timeouts per priority and/or another merge similarity; return `path`.

    For runs that must see an escalation within seconds (`make run`'s scenarios, the end-to-end
    and console tests) or none at all (the benchmark): point DISPATCHER_ROUTING_FILE at it.
    """
    source = base or default_paths()[2]
    routing = yaml.safe_load(source.read_text(encoding="utf-8"))
    if timeouts_s:
        routing["timeouts_s"] = {**routing.get("timeouts_s", {}), **timeouts_s}
    if merge_similarity is not None:
        routing.setdefault("merge", {})["similarity"] = merge_similarity
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(routing, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def load_organisation(
    organisation_file: Path | None = None,
    rosters_file: Path | None = None,
    routing_file: Path | None = None,
) -> Organisation:
    """Load and validate the three files; raise ConfigError naming every problem's line."""
    d_org, d_rost, d_rout = default_paths()
    issues: list[ConfigIssue] = []
    org_src = _Source(Path(organisation_file or d_org), issues)
    rost_src = _Source(Path(rosters_file or d_rost), issues)
    rout_src = _Source(Path(routing_file or d_rout), issues)
    if issues:
        raise ConfigError(issues)
    org_raw = _parse(org_src, OrganisationFile, issues)
    rost_raw = _parse(rost_src, RostersFile, issues)
    rout_raw = _parse(rout_src, RoutingFile, issues)
    if issues or org_raw is None or rost_raw is None or rout_raw is None:
        raise ConfigError(issues)
    builder = _Builder(org_src, rost_src, rout_src, issues)
    result = builder.build(org_raw, rost_raw, rout_raw)
    if issues or result is None:
        raise ConfigError(issues)
    return result


def _parse(src: _Source, model: type[_T], issues: list[ConfigIssue]) -> _T | None:
    if not isinstance(src.data, dict):
        src.issue(issues, (), "expected a mapping at the top of the file")
        return None
    try:
        return model.model_validate(src.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            where = ".".join(str(p) for p in loc) or "(file)"
            src.issue(issues, loc, f"{where}: {err.get('msg', 'invalid')}")
        return None


class _Builder:
    """Semantic validation across the three files, building the Organisation."""

    def __init__(
        self, org: _Source, rosters: _Source, routing: _Source, issues: list[ConfigIssue]
    ) -> None:
        self.org = org
        self.rost = rosters
        self.rout = routing
        self.issues = issues

    def build(
        self, org: OrganisationFile, rosters: RostersFile, routing: RoutingFile
    ) -> Organisation | None:
        try:
            tz = ZoneInfo(org.province.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.org.issue(
                self.issues,
                ("province", "timezone"),
                f"unknown time zone {org.province.timezone!r}",
            )
            return None
        province = Province(
            id=org.province.id,
            name_vi=org.province.name_vi,
            name_en=org.province.name_en,
            case_prefix=org.province.case_prefix,
            tz=tz,
            hotline=org.province.hotline,
        )
        units, people = self._units(org)
        built_rosters = self._rosters(rosters, units, people, tz)
        routing_cfg = self._routing(routing, units, people, built_rosters)
        district_police: dict[District, str] = {}
        departments: dict[Category, list[str]] = {}
        for unit in units.values():
            if unit.kind == "district":
                for d in unit.jurisdiction:
                    district_police.setdefault(d, unit.id)
            if unit.kind == "department":
                for c in unit.categories:
                    departments.setdefault(c, []).append(unit.id)
        for d in District:
            if d not in district_police:
                self.org.issue(self.issues, ("units",), f"no district police unit for {d.value!r}")
        # Every unit that may be made responsible needs someone on call.
        for unit in units.values():
            if unit.kind in ("district", "department") and (unit.id, Role.OFFICER) not in (
                built_rosters
            ):
                idx = next(i for i, u in enumerate(org.units) if u.id == unit.id)
                self.org.issue(
                    self.issues,
                    ("units", idx, "id"),
                    f"unit {unit.id!r} has no officer roster in {self.rost.name}",
                )
        contact_index: dict[tuple[str, str], str] = {}
        phone_index: dict[str, str] = {}
        for person in people.values():
            for contact in person.contacts:
                contact_index.setdefault((contact.channel, contact.address), person.id)
                if contact.channel in ("sms", "whatsapp", "zalo", "viber"):
                    phone = normalise_phone(contact.address)
                    if phone:
                        phone_index.setdefault(phone, person.id)
        if self.issues or routing_cfg is None:
            return None
        return Organisation(
            province=province,
            units=units,
            people=people,
            rosters=built_rosters,
            routing=routing_cfg,
            district_police=district_police,
            departments={c: tuple(ids) for c, ids in departments.items()},
            contact_index=contact_index,
            phone_index=phone_index,
        )

    # ---------------------------------------------------------------- units and people

    def _units(self, org: OrganisationFile) -> tuple[dict[str, Unit], dict[str, Person]]:
        units: dict[str, Unit] = {}
        people: dict[str, Person] = {}
        for ui, u in enumerate(org.units):
            path: tuple[object, ...] = ("units", ui)
            if u.id in units:
                self.org.issue(self.issues, (*path, "id"), f"duplicate unit id {u.id!r}")
                continue
            jurisdiction: list[District] = []
            for ji, code in enumerate(u.jurisdiction):
                try:
                    jurisdiction.append(District(code))
                except ValueError:
                    self.org.issue(
                        self.issues,
                        (*path, "jurisdiction", ji),
                        f"unit {u.id!r}: unknown district {code!r} "
                        f"(known: {', '.join(d.value for d in District)})",
                    )
            categories: list[Category] = []
            for ci, cat in enumerate(u.categories):
                try:
                    categories.append(Category(cat))
                except ValueError:
                    self.org.issue(
                        self.issues,
                        (*path, "categories", ci),
                        f"unit {u.id!r}: unknown category {cat!r}",
                    )
            if u.kind == "district" and not u.jurisdiction:
                self.org.issue(
                    self.issues, (*path, "id"), f"district unit {u.id!r} has no jurisdiction"
                )
            if u.kind == "department" and not u.categories:
                self.org.issue(
                    self.issues, (*path, "id"), f"department {u.id!r} handles no category"
                )
            member_ids: list[str] = []
            for pi, p in enumerate(u.members):
                ppath = (*path, "members", pi)
                if p.id in people or p.id in member_ids:
                    self.org.issue(self.issues, (*ppath, "id"), f"duplicate person id {p.id!r}")
                    continue
                if not p.contacts:
                    self.org.issue(
                        self.issues,
                        (*ppath, "id"),
                        f"{p.role.value} {p.id!r} of unit {u.id!r} has no contact channel",
                    )
                people[p.id] = Person(
                    id=p.id,
                    name=p.name,
                    rank=p.rank,
                    role=p.role,
                    unit_id=u.id,
                    title=p.title,
                    contacts=tuple(
                        Contact(channel=c.channel, address=c.address) for c in p.contacts
                    ),
                )
                member_ids.append(p.id)
            if u.commander not in member_ids:
                self.org.issue(
                    self.issues,
                    (*path, "commander"),
                    f"unit {u.id!r}: commander {u.commander!r} is not a member of the unit",
                )
            units[u.id] = Unit(
                id=u.id,
                code=u.code,
                kind=u.kind,
                name_vi=u.name_vi,
                name_en=u.name_en,
                jurisdiction=tuple(jurisdiction),
                categories=tuple(categories),
                commander_id=u.commander,
                member_ids=tuple(member_ids),
            )
        return units, people

    # ---------------------------------------------------------------- rosters

    def _rosters(
        self,
        rosters: RostersFile,
        units: dict[str, Unit],
        people: dict[str, Person],
        tz: ZoneInfo,
    ) -> dict[tuple[str, Role], Roster]:
        out: dict[tuple[str, Role], Roster] = {}
        for ri, r in enumerate(rosters.rosters):
            path: tuple[object, ...] = ("rosters", ri)
            unit = units.get(r.unit)
            if unit is None:
                self.rost.issue(self.issues, (*path, "unit"), f"unknown unit {r.unit!r}")
                continue
            if (r.unit, r.duty) in out:
                self.rost.issue(
                    self.issues,
                    (*path, "unit"),
                    f"second {r.duty.value} roster for unit {r.unit!r}",
                )
                continue
            shifts = [
                Shift(s.id, time.fromisoformat(s.start), time.fromisoformat(s.end))
                for s in r.shifts
            ]
            ids = [s.id for s in shifts]
            for si, s in enumerate(shifts):
                if ids.count(s.id) > 1:
                    self.rost.issue(
                        self.issues, (*path, "shifts", si, "id"), f"duplicate shift id {s.id!r}"
                    )
            gap = _coverage_gap(shifts)
            if gap is not None:
                self.rost.issue(
                    self.issues,
                    (*path, "shifts"),
                    f"roster {r.unit}/{r.duty.value}: shift gap, nobody is on duty from "
                    f"{gap[0]} to {gap[1]}",
                )
            days: list[dict[str, tuple[str, ...]]] = []
            for di, day in enumerate(r.rotation.days):
                dpath = (*path, "rotation", "days", di)
                for shift_id in day:
                    if shift_id not in ids:
                        self.rost.issue(
                            self.issues,
                            (*dpath, shift_id),
                            f"roster {r.unit}/{r.duty.value}: unknown shift {shift_id!r}",
                        )
                for s in shifts:
                    officers = day.get(s.id, [])
                    if not officers:
                        self.rost.issue(
                            self.issues,
                            dpath,
                            f"roster {r.unit}/{r.duty.value}: shift gap, nobody on call for "
                            f"shift {s.id!r} on rotation day {di}",
                        )
                    for oi, pid in enumerate(officers):
                        self._check_member(pid, unit, people, (*dpath, s.id, oi))
                days.append({k: tuple(v) for k, v in day.items()})
            overrides: list[Override] = []
            for oi, o in enumerate(r.overrides):
                opath = (*path, "overrides", oi)
                self._check_member(o.officer, unit, people, (*opath, "officer"), any_unit=True)
                if o.replaces is not None:
                    self._check_member(o.replaces, unit, people, (*opath, "replaces"))
                start = _localise(o.start, tz)
                end = _localise(o.end, tz)
                if end <= start:
                    self.rost.issue(self.issues, (*opath, "end"), "override ends before it starts")
                overrides.append(Override(start, end, o.officer, o.replaces, o.reason))
            out[(r.unit, r.duty)] = Roster(
                unit_id=r.unit,
                duty=r.duty,
                shifts=tuple(shifts),
                anchor=r.rotation.anchor,
                days=tuple(days),
                overrides=tuple(overrides),
            )
        return out

    def _check_member(
        self,
        pid: str,
        unit: Unit,
        people: dict[str, Person],
        path: tuple[object, ...],
        any_unit: bool = False,
    ) -> None:
        if pid not in people:
            self.rost.issue(self.issues, path, f"unknown person {pid!r} in roster of {unit.id!r}")
        elif not any_unit and people[pid].unit_id != unit.id:
            self.rost.issue(
                self.issues,
                path,
                f"{pid!r} is a member of {people[pid].unit_id!r}, not of {unit.id!r}",
            )

    # ---------------------------------------------------------------- routing

    def _routing(
        self,
        routing: RoutingFile,
        units: dict[str, Unit],
        people: dict[str, Person],
        rosters: dict[tuple[str, Role], Roster],
    ) -> Routing | None:
        src = self.rout
        ok = True
        if routing.staff_office not in units:
            src.issue(self.issues, ("staff_office",), f"unknown unit {routing.staff_office!r}")
            ok = False
        elif (routing.staff_office, Role.STAFF_LEADER) not in rosters:
            src.issue(
                self.issues,
                ("staff_office",),
                f"staff office {routing.staff_office!r} has no staff_leader roster",
            )
        if routing.director not in people:
            src.issue(self.issues, ("director",), f"unknown person {routing.director!r}")
            ok = False
        if routing.callback.unit not in units:
            src.issue(self.issues, ("callback", "unit"), f"unknown unit {routing.callback.unit!r}")
        elif (routing.callback.unit, routing.callback.duty) not in rosters:
            src.issue(
                self.issues,
                ("callback", "duty"),
                f"unit {routing.callback.unit!r} has no {routing.callback.duty.value} roster",
            )
        timeouts: dict[Priority, int] = {}
        for key, value in routing.timeouts_s.items():
            try:
                prio = Priority(key)
            except ValueError:
                src.issue(self.issues, ("timeouts_s", key), f"unknown priority {key!r}")
                continue
            if value <= 0:
                src.issue(self.issues, ("timeouts_s", key), "timeout must be positive")
            timeouts[prio] = value
        for prio in (Priority.P1, Priority.P2, Priority.P3):
            if prio not in timeouts:
                src.issue(self.issues, ("timeouts_s",), f"missing timeout for {prio.value}")
        rules: list[Rule] = []
        seen: set[str] = set()
        for ri, r in enumerate(routing.rules):
            path: tuple[object, ...] = ("rules", ri)
            if r.id in seen:
                src.issue(self.issues, (*path, "id"), f"duplicate rule id {r.id!r}")
            seen.add(r.id)
            when = self._when(r.when, (*path, "when"))
            if r.responsible is not None and r.responsible not in RESPONSIBLE_TOKENS:
                if r.responsible not in units:
                    src.issue(
                        self.issues,
                        (*path, "responsible"),
                        f"rule {r.id!r}: unknown unit {r.responsible!r}",
                    )
                elif (r.responsible, Role.OFFICER) not in rosters and (
                    r.responsible != routing.staff_office
                ):
                    src.issue(
                        self.issues,
                        (*path, "responsible"),
                        f"rule {r.id!r}: unit {r.responsible!r} has no officer roster",
                    )
            for ii, token in enumerate(r.inform):
                if token not in INFORM_TOKENS and token not in units:
                    src.issue(
                        self.issues,
                        (*path, "inform", ii),
                        f"rule {r.id!r}: unknown unit {token!r}",
                    )
            if r.responsible is None and not r.inform:
                src.issue(self.issues, (*path, "id"), f"rule {r.id!r} does nothing")
            rules.append(Rule(r.id, when, r.responsible, tuple(r.inform)))
        last = routing.rules[-1]
        if last.responsible is None or last.when != WhenFile():
            src.issue(
                self.issues,
                ("rules", len(routing.rules) - 1),
                "the last rule must have no conditions and a `responsible` unit (the fallback)",
            )
        if not ok:
            return None
        return Routing(
            staff_office_id=routing.staff_office,
            director_id=routing.director,
            callback_unit_id=routing.callback.unit,
            callback_duty=routing.callback.duty,
            timeouts_s=timeouts,
            merge=MergeSettings(
                window=timedelta(seconds=routing.merge.window_s),
                similarity=routing.merge.similarity,
                followup_window=timedelta(seconds=routing.merge.followup_window_s),
            ),
            reminder_interval=timedelta(seconds=routing.directives.reminder_interval_s),
            default_deadline=timedelta(seconds=routing.directives.default_deadline_s),
            rules=tuple(rules),
        )

    def _when(self, w: WhenFile, path: tuple[object, ...]) -> When:
        src = self.rout

        def enum_set(values: list[str] | None, enum: type[_E], key: str) -> frozenset[_E] | None:
            if values is None:
                return None
            out: set[_E] = set()
            for i, v in enumerate(values):
                try:
                    out.add(enum(v))
                except ValueError:
                    src.issue(self.issues, (*path, key, i), f"unknown {key} {v!r}")
            return frozenset(out)

        location: Literal["known", "unknown"] | frozenset[District] | None = None
        if isinstance(w.location, str):
            if w.location == "known":
                location = "known"
            elif w.location == "unknown":
                location = "unknown"
            else:
                src.issue(
                    self.issues,
                    (*path, "location"),
                    f"location must be known, unknown or a list of districts, not {w.location!r}",
                )
        elif isinstance(w.location, list):
            districts: set[District] = set()
            for i, v in enumerate(w.location):
                try:
                    districts.add(District(v))
                except ValueError:
                    src.issue(self.issues, (*path, "location", i), f"unknown district {v!r}")
            location = frozenset(districts)
        return When(
            priorities=enum_set(w.priority, Priority, "priority"),
            categories=enum_set(w.category, Category, "category"),
            location=location,
            kinds=enum_set(w.kind, InboundKind, "kind"),
            channels=enum_set(w.channel, Channel, "channel"),
        )


def _localise(value: datetime, tz: ZoneInfo) -> datetime:
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def _coverage_gap(shifts: list[Shift]) -> tuple[str, str] | None:
    """The first stretch of the day no shift covers, as ('HH:MM', 'HH:MM'), or None."""
    day = 24 * 60
    covered = [False] * day
    for s in shifts:
        start = s.start.hour * 60 + s.start.minute
        length = int(s.duration.total_seconds() // 60)
        for m in range(start, start + length):
            covered[m % day] = True
    if all(covered):
        return None
    first = covered.index(False)
    last = first
    while last + 1 < day and not covered[last + 1]:
        last += 1
    return (
        f"{first // 60:02d}:{first % 60:02d}",
        f"{(last + 1) // 60 % 24:02d}:{(last + 1) % 60:02d}",
    )
