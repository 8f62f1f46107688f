"""Merging (pure): does a report join an open case instead of opening a new one?

Two reasons to join:

* **follow-up** — the same citizen (same phone number, or same channel account) has an open
  case reported within the follow-up window and the new message is about it, not about another
  incident (see `continues`): a missed call joins only the caller's open callback task; a report
  joins only one of the citizen's open report cases of the same category (or is an `other`
  addition no more urgent than the case) whose district it repeats or leaves out. Anything
  else — above all a more urgent incident of another kind or in another place — opens a case of
  its own, routed normally, so it is never hidden in an older case's chain;
* **same incident** — an open case of the same category in the same district, last reported
  within the merge window, whose text shares enough significant words (overlap coefficient ≥
  the configured similarity), in the same place: a report naming a locality (the commune,
  ward or landmark the classifier found) joins only a case with no locality or a matching
  one, and a report giving a house, alley or hamlet number joins only a case with no such
  number or the same one. Reports without a district never merge across citizens.

Two reports too alike to tell apart but naming two communes are two rescues: each gets its own
case and alert, and the Staff Office can still merge them from the console. A report that
names no locality is not a reason to split (most reports name a place only once, if at all).

`OpenCaseIndex` is the working set of recently reported open cases the decision needs, kept in
memory (warmed from and refreshed against MongoDB by the flows) so that a decision costs no
database read. `IndexView` layers one batch's provisional changes over it: later events of the
batch see earlier ones, and nothing reaches the index unless the batch's writes succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from hotline.contracts.labels import Category, District, Priority
from hotline_dispatcher.cases import more_urgent
from hotline_dispatcher.text import different_addresses, same_locality, similarity

REPORT = "report"
CALLBACK = "callback"


@dataclass(frozen=True)
class OpenCase:
    """What merging needs to know about an open case."""

    case_id: str
    category: Category
    location: District | None
    priority: Priority
    words: frozenset[str]
    opened_at: datetime
    last_report_at: datetime
    reporter_keys: frozenset[str]
    responsible_unit: str
    assignee_id: str | None
    kind: str = REPORT  # or CALLBACK
    # Where, exactly: the localities its reports named (gazetteer names) and the house, alley
    # and hamlet numbers they gave ('house:12', see text.address_numbers).
    localities: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()


def locality_matches(locality: str | None, case: OpenCase) -> bool:
    """A report's locality fits a case that names none, or names the same place."""
    if locality is None or not case.localities:
        return True
    return any(same_locality(locality, known) for known in case.localities)


@dataclass(frozen=True)
class MergeMatch:
    case: OpenCase
    reason: str  # "followup" or "same_incident" (a metric label)
    score: float
    detail: str


@dataclass(frozen=True)
class Lookup:
    """What merging found for a report: the case it joins, if any, and otherwise the most
    similar case it was kept apart from because the two name different places (for the
    reasons the Staff Office reads, and the `kept_apart` metric)."""

    match: MergeMatch | None = None
    kept_apart: MergeMatch | None = None


def continues(
    case: OpenCase,
    *,
    kind: str,
    category: Category,
    priority: Priority,
    location: District | None,
    locality: str | None = None,
) -> bool:
    """Is a citizen's new message a follow-up on their own open `case`, not a new incident?

    `kind` is what the message would open on its own: `CALLBACK` for a missed call, `REPORT`
    otherwise. A missed call continues only a callback task (the call-taker rings back once);
    a report never continues a callback task (a call-taker does not respond to incidents). A
    report continues a report case when it is about the same thing — the same category, or
    `other` (extra details, "how is my case going?") no more urgent than the case — and in
    the same place — the same district, or none named. A different category, a district the
    case does not have, or an `other` more urgent than the case is a new incident.
    """
    if kind == CALLBACK or case.kind == CALLBACK:
        return kind == case.kind
    same_subject = category == case.category or (
        category == Category.OTHER and not more_urgent(priority, case.priority)
    )
    same_place = location is None or (
        location == case.location and locality_matches(locality, case)
    )
    return same_subject and same_place


class OpenCaseIndex:
    """Recently reported open cases by (category, district) slot and by reporter."""

    def __init__(self) -> None:
        self.cases: dict[str, OpenCase] = {}
        self.slots: dict[tuple[Category, District], set[str]] = {}
        self.reporters: dict[str, set[str]] = {}  # reporter key → their open cases

    def __len__(self) -> int:
        return len(self.cases)

    def put(self, case: OpenCase) -> None:
        old = self.cases.get(case.case_id)
        if old is not None and old.location is not None:
            self.slots.get((old.category, old.location), set()).discard(old.case_id)
        self.cases[case.case_id] = case
        if case.location is not None and case.kind == REPORT:
            self.slots.setdefault((case.category, case.location), set()).add(case.case_id)
        for key in case.reporter_keys:
            self.reporters.setdefault(key, set()).add(case.case_id)

    def update(self, case: OpenCase) -> None:
        """Put `case` as a case document has it, keeping what the index learned from its
        later reports (reporters, last report, and, in the same district, localities and
        house numbers): the document records only the opening report's."""
        old = self.cases.get(case.case_id)
        if old is not None:
            same_place = old.location == case.location
            case = replace(
                case,
                reporter_keys=case.reporter_keys | old.reporter_keys,
                last_report_at=max(case.last_report_at, old.last_report_at),
                localities=case.localities | old.localities if same_place else case.localities,
                addresses=case.addresses | old.addresses,
            )
        self.put(case)

    def remove(self, case_id: str) -> None:
        case = self.cases.pop(case_id, None)
        if case is None:
            return
        if case.location is not None:
            self.slots.get((case.category, case.location), set()).discard(case_id)
        for key in case.reporter_keys:
            own = self.reporters.get(key)
            if own is not None:
                own.discard(case_id)
                if not own:
                    del self.reporters[key]

    def get(self, case_id: str) -> OpenCase | None:
        return self.cases.get(case_id)

    def prune(self, now: datetime, keep: timedelta) -> int:
        """Forget cases last reported before `now - keep` (they can no longer be joined)."""
        stale = [c.case_id for c in self.cases.values() if c.last_report_at < now - keep]
        for case_id in stale:
            self.remove(case_id)
        return len(stale)

    def in_slot(self, category: Category, location: District) -> Iterable[OpenCase]:
        for case_id in self.slots.get((category, location), ()):
            case = self.cases.get(case_id)
            if case is not None:
                yield case


@dataclass
class IndexView:
    """One batch's provisional view: the index plus the batch's own new cases and reports."""

    base: OpenCaseIndex
    changed: dict[str, OpenCase] = field(default_factory=dict)
    reporters: dict[str, set[str]] = field(default_factory=dict)

    def get(self, case_id: str) -> OpenCase | None:
        return self.changed.get(case_id) or self.base.get(case_id)

    def put(self, case: OpenCase) -> None:
        self.changed[case.case_id] = case
        for key in case.reporter_keys:
            self.reporters.setdefault(key, set()).add(case.case_id)

    def rekey(self, placeholder: str, case_id: str) -> None:
        """Give a case opened in this batch (`~<event id>`) its allocated number."""
        case = self.changed.pop(placeholder, None)
        if case is None:
            return
        self.changed[case_id] = replace(case, case_id=case_id)
        for key in case.reporter_keys:
            own = self.reporters.get(key)
            if own is not None and placeholder in own:
                own.discard(placeholder)
                own.add(case_id)

    def own_cases(self, reporter_key: str, since: datetime) -> list[OpenCase]:
        """The citizen's open cases last reported at or after `since`."""
        ids = self.base.reporters.get(reporter_key, set()) | self.reporters.get(reporter_key, set())
        cases = (self.get(case_id) for case_id in ids)
        return [c for c in cases if c is not None and c.last_report_at >= since]

    def add_report(
        self,
        case_id: str,
        reporter_key: str,
        at: datetime,
        priority: Priority | None = None,
        *,
        locality: str | None = None,
        addresses: frozenset[str] = frozenset(),
    ) -> None:
        case = self.get(case_id)
        if case is None:
            return
        updated = replace(
            case,
            last_report_at=max(case.last_report_at, at),
            reporter_keys=case.reporter_keys | {reporter_key},
            priority=priority or case.priority,
            localities=case.localities | ({locality} if locality else set()),
            addresses=case.addresses | addresses,
        )
        self.put(updated)

    def commit(self) -> None:
        for case in self.changed.values():
            self.base.put(case)
        self.changed.clear()
        self.reporters.clear()

    def lookup(
        self,
        *,
        reporter_key: str,
        category: Category,
        priority: Priority,
        location: District | None,
        words: frozenset[str],
        at: datetime,
        window: timedelta,
        followup_window: timedelta,
        threshold: float,
        kind: str = REPORT,
        locality: str | None = None,
        addresses: frozenset[str] = frozenset(),
    ) -> Lookup:
        """The open case this report (or missed call, `kind=CALLBACK`) joins, with the reason.

        The citizen's own cases come first (`continues` decides; among several, the one of the
        same category, then of the same district, then the latest reported). Missed calls
        join nothing else. Another citizen's case is joined only in the same place
        (`locality_matches`, and no disagreeing house, alley or hamlet number).
        """
        own = [
            c
            for c in self.own_cases(reporter_key, at - followup_window)
            if continues(
                c,
                kind=kind,
                category=category,
                priority=priority,
                location=location,
                locality=locality,
            )
        ]
        if own:
            best_own = max(
                own,
                key=lambda c: (
                    c.category == category,
                    location is not None and c.location == location,
                    c.last_report_at,
                    c.case_id,
                ),
            )
            return Lookup(
                MergeMatch(
                    best_own, "followup", 1.0, f"same citizen's open case {best_own.case_id}"
                )
            )
        if kind == CALLBACK or location is None or not words:
            return Lookup()
        candidates: dict[str, OpenCase] = {
            c.case_id: c for c in self.base.in_slot(category, location)
        }
        for case in self.changed.values():
            if case.category == category and case.location == location and case.kind == REPORT:
                candidates[case.case_id] = case
        best: MergeMatch | None = None
        apart: MergeMatch | None = None
        for case in candidates.values():
            case = self.changed.get(case.case_id, case)
            if case.last_report_at < at - window:
                continue
            score = similarity(words, case.words)
            if score < threshold:
                continue
            if not locality_matches(locality, case):
                why = f"another place: {locality}; the case: {', '.join(sorted(case.localities))}"
                if apart is None or score > apart.score:
                    apart = MergeMatch(case, "locality", score, why)
                continue
            if different_addresses(addresses, case.addresses):
                why = (
                    f"another address: {', '.join(sorted(addresses))}; "
                    f"the case: {', '.join(sorted(case.addresses))}"
                )
                if apart is None or score > apart.score:
                    apart = MergeMatch(case, "address", score, why)
                continue
            if best is None or score > best.score:
                shared = ", ".join(sorted(words & case.words)[:6])
                best = MergeMatch(
                    case,
                    "same_incident",
                    score,
                    f"same {category.value} in {location.value}"
                    + (f" ({locality})" if locality else "")
                    + f" as {case.case_id}, "
                    f"text similarity {score:.2f} (shared: {shared})",
                )
        return Lookup(best, None if best is not None else apart)
