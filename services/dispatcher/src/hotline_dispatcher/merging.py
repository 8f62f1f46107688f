"""Merging (pure): does a report join an open case instead of opening a new one?

Two reasons to join:

* **follow-up** — the same citizen (same phone number, or same channel account) has an open
  case reported within the follow-up window: whatever the new message says, it belongs there;
* **same incident** — an open case of the same category in the same district, last reported
  within the merge window, whose text shares enough significant words (overlap coefficient ≥
  the configured similarity). Reports without a district never merge across citizens.

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
from hotline_dispatcher.text import similarity


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
    kind: str = "report"  # or "callback"


@dataclass(frozen=True)
class MergeMatch:
    case: OpenCase
    reason: str  # "followup" or "same_incident" (a metric label)
    score: float
    detail: str


class OpenCaseIndex:
    """Recently reported open cases by (category, district) slot and by reporter."""

    def __init__(self) -> None:
        self.cases: dict[str, OpenCase] = {}
        self.slots: dict[tuple[Category, District], set[str]] = {}
        self.reporters: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.cases)

    def put(self, case: OpenCase) -> None:
        old = self.cases.get(case.case_id)
        if old is not None and old.location is not None:
            self.slots.get((old.category, old.location), set()).discard(old.case_id)
        self.cases[case.case_id] = case
        if case.location is not None and case.kind == "report":
            self.slots.setdefault((case.category, case.location), set()).add(case.case_id)
        for key in case.reporter_keys:
            self.reporters[key] = case.case_id

    def remove(self, case_id: str) -> None:
        case = self.cases.pop(case_id, None)
        if case is None:
            return
        if case.location is not None:
            self.slots.get((case.category, case.location), set()).discard(case_id)
        for key in case.reporter_keys:
            if self.reporters.get(key) == case_id:
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
    reporters: dict[str, str] = field(default_factory=dict)

    def get(self, case_id: str) -> OpenCase | None:
        return self.changed.get(case_id) or self.base.get(case_id)

    def put(self, case: OpenCase) -> None:
        self.changed[case.case_id] = case
        for key in case.reporter_keys:
            self.reporters[key] = case.case_id

    def add_report(
        self, case_id: str, reporter_key: str, at: datetime, priority: Priority | None = None
    ) -> None:
        case = self.get(case_id)
        if case is None:
            return
        updated = replace(
            case,
            last_report_at=max(case.last_report_at, at),
            reporter_keys=case.reporter_keys | {reporter_key},
            priority=priority or case.priority,
        )
        self.put(updated)

    def commit(self) -> None:
        for case in self.changed.values():
            self.base.put(case)
        self.changed.clear()
        self.reporters.clear()

    def find(
        self,
        *,
        reporter_key: str,
        category: Category,
        location: District | None,
        words: frozenset[str],
        at: datetime,
        window: timedelta,
        followup_window: timedelta,
        threshold: float,
    ) -> MergeMatch | None:
        """The open case this report joins, with the reason, or None."""
        case_id = self.reporters.get(reporter_key) or self.base.reporters.get(reporter_key)
        own = self.get(case_id) if case_id else None
        if own is not None and own.last_report_at >= at - followup_window:
            return MergeMatch(own, "followup", 1.0, f"same citizen's open case {own.case_id}")
        if location is None or not words:
            return None
        candidates: dict[str, OpenCase] = {
            c.case_id: c for c in self.base.in_slot(category, location)
        }
        for case in self.changed.values():
            if case.category == category and case.location == location and case.kind == "report":
                candidates[case.case_id] = case
        best: MergeMatch | None = None
        for case in candidates.values():
            case = self.changed.get(case.case_id, case)
            if case.last_report_at < at - window:
                continue
            score = similarity(words, case.words)
            if score >= threshold and (best is None or score > best.score):
                shared = ", ".join(sorted(words & case.words)[:6])
                best = MergeMatch(
                    case,
                    "same_incident",
                    score,
                    f"same {category.value} in {location.value} as {case.case_id}, "
                    f"text similarity {score:.2f} (shared: {shared})",
                )
        return best
