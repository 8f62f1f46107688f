"""The in-memory working set shared by the hot path and the ops API (one per process).

* `index` — recently reported open cases, for merging and follow-ups (see `merging`);
* `loads` — open cases per person, for "fewest open cases" assignment.

Both are refreshed from MongoDB at start-up and periodically (so changes made by other replicas
are picked up), and updated in place by this process's own decisions and API operations.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hotline.clock import ensure_utc
from hotline.contracts.labels import Category, District, Priority
from hotline_dispatcher.cases import OPEN_STATES, CaseState
from hotline_dispatcher.merging import OpenCase, OpenCaseIndex
from hotline_dispatcher.repository import Repository


@dataclass
class WorkingSet:
    index: OpenCaseIndex = field(default_factory=OpenCaseIndex)
    loads: Counter[str] = field(default_factory=Counter)
    refreshed_at: datetime | None = None

    async def refresh(
        self, repo: Repository, now: datetime, keep: timedelta
    ) -> list[dict[str, Any]]:
        """Rebuild the index and the loads from the database; return the open cases (for the
        gauges).

        Two reads: the recent reports, and the open cases (once, for the index and the loads:
        FerretDB reads a whole collection for any query but one on `_id`).
        """
        reports = await repo.recent_reports(now - keep)
        by_case: dict[str, list[dict[str, Any]]] = {}
        for r in reports:
            by_case.setdefault(str(r["case_id"]), []).append(r)
        open_docs = await repo.open_cases()
        index = OpenCaseIndex()
        for doc in open_docs:
            rs = by_case.get(str(doc["_id"]))
            if rs is None or CaseState(doc["state"]) not in OPEN_STATES:
                continue
            entry = open_case_from_doc(doc)
            last = max([ensure_utc(r["at"]) for r in rs] + [entry.last_report_at])
            keys = frozenset(str(r["reporter_key"]) for r in rs if r.get("reporter_key"))
            # A report's locality counts where it lies: in the case's district (a corrected
            # location drops the localities of the district it corrected away from).
            localities = frozenset(
                str(r["locality"])
                for r in rs
                if r.get("locality") and r.get("location") == doc.get("location")
            )
            addresses = frozenset(str(a) for r in rs for a in r.get("addresses") or ())
            index.put(
                OpenCase(
                    **{
                        **entry.__dict__,
                        "last_report_at": last,
                        "reporter_keys": entry.reporter_keys | keys,
                        "localities": entry.localities | localities,
                        "addresses": entry.addresses | addresses,
                    }
                )
            )
        # Cases this process indexed after the query started stay known.
        for case_id, case in self.index.cases.items():
            if case_id not in index.cases and case.last_report_at >= now - timedelta(seconds=5):
                index.put(case)
        self.index = index
        self.loads = loads_of(open_docs)
        self.refreshed_at = now
        return open_docs

    async def refresh_loads(self, repo: Repository) -> list[dict[str, Any]]:
        open_docs = await repo.open_cases()
        self.loads = loads_of(open_docs)
        return open_docs


def loads_of(open_docs: list[dict[str, Any]]) -> Counter[str]:
    """Open cases per assignee."""
    loads: Counter[str] = Counter()
    for doc in open_docs:
        assignee = doc.get("assignee") or {}
        if assignee.get("person_id"):
            loads[str(assignee["person_id"])] += 1
    return loads


def open_case_from_doc(doc: dict[str, Any]) -> OpenCase:
    assignee = doc.get("assignee") or {}
    received = ensure_utc(doc.get("received_at") or doc["opened_at"])
    return OpenCase(
        case_id=str(doc["_id"]),
        category=Category(doc["category"]),
        location=District(doc["location"]) if doc.get("location") else None,
        priority=Priority(doc["priority"]),
        words=frozenset(doc.get("tokens") or ()),
        opened_at=ensure_utc(doc["opened_at"]),
        last_report_at=ensure_utc(doc.get("last_report_at") or received),
        reporter_keys=frozenset([doc["reporter_key"]] if doc.get("reporter_key") else []),
        responsible_unit=str(doc["responsible_unit"]),
        assignee_id=assignee.get("person_id"),
        kind=str(doc.get("kind", "report")),
        localities=frozenset(doc.get("localities") or ()),
        addresses=frozenset(doc.get("addresses") or ()),
    )
