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

    async def refresh(self, repo: Repository, now: datetime, keep: timedelta) -> None:
        """Rebuild the index and the loads from the database."""
        reports = await repo.recent_reports(now - keep)
        by_case: dict[str, list[dict[str, Any]]] = {}
        for r in reports:
            by_case.setdefault(str(r["case_id"]), []).append(r)
        docs = await repo.cases_by_ids(list(by_case))
        index = OpenCaseIndex()
        for doc in docs:
            if CaseState(doc["state"]) not in OPEN_STATES:
                continue
            entry = open_case_from_doc(doc)
            rs = by_case.get(entry.case_id, [])
            last = max([ensure_utc(r["at"]) for r in rs] + [entry.last_report_at])
            keys = frozenset(str(r["reporter_key"]) for r in rs if r.get("reporter_key"))
            index.put(
                OpenCase(
                    **{
                        **entry.__dict__,
                        "last_report_at": last,
                        "reporter_keys": entry.reporter_keys | keys,
                    }
                )
            )
        # Cases this process indexed after the query started stay known.
        for case_id, case in self.index.cases.items():
            if case_id not in index.cases and case.last_report_at >= now - timedelta(seconds=5):
                index.put(case)
        self.index = index
        await self.refresh_loads(repo)
        self.refreshed_at = now

    async def refresh_loads(self, repo: Repository) -> list[dict[str, Any]]:
        open_docs = await repo.open_cases()
        loads: Counter[str] = Counter()
        for doc in open_docs:
            assignee = doc.get("assignee") or {}
            if assignee.get("person_id"):
                loads[str(assignee["person_id"])] += 1
        self.loads = loads
        return open_docs


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
    )
