"""The live queue's filters and order (pure).

P1 cases nobody has acknowledged yet are pinned above everything, whatever the filters and the
sort, until someone acknowledges them; the rest are newest first (or most urgent first:
priority, then unacknowledged before acknowledged, then newest).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from hotline.contracts.labels import Category, Channel, District, Priority

STATES = ("new", "assigned", "acknowledged", "resolved", "closed")
WITHIN_DAYS: dict[str, int | None] = {"today": 0, "7d": 6, "30d": 29, "all": None}
"""How far back the message search goes: today, the last 7 or 30 days (today included), or
every day kept."""
UNACKNOWLEDGED = frozenset({"new", "assigned"})
PRIORITY_RANK = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}
LIMIT = 100


def _pick(values: Iterable[str], allowed: Iterable[str]) -> list[str]:
    ok = set(allowed)
    return [v for v in dict.fromkeys(values) if v in ok]


@dataclass(frozen=True)
class QueueFilters:
    """What the person filters by; `state=["open"]` (the default) means new+assigned+acked."""

    state: list[str] = field(default_factory=lambda: ["open"])
    priority: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    unit: str | None = None
    district: str | None = None
    q: str | None = None
    sort: str = "newest"
    within: str = "today"

    @classmethod
    def parse(cls, params: Mapping[str, Sequence[str]]) -> QueueFilters:
        """From a query string (multi-valued); unknown values are dropped, not errors."""

        def one(name: str) -> str | None:
            values = [v for v in params.get(name, []) if v.strip()]
            return values[0].strip() if values else None

        state = _pick(params.get("state", []), ("open", "any", *STATES)) or ["open"]
        district = one("district")
        q = one("q")
        within = one("within")
        return cls(
            state=state,
            priority=_pick(params.get("priority", []), [p.value for p in Priority]),
            category=_pick(params.get("category", []), [c.value for c in Category]),
            channel=_pick(params.get("channel", []), [c.value for c in Channel]),
            unit=one("unit"),
            district=district if district in {d.value for d in District} else None,
            q=q[:200] if q else None,
            sort="urgent" if one("sort") == "urgent" else "newest",
            within=within if within in WITHIN_DAYS else "today",
        )

    def messages_since(self, now: datetime) -> str | None:
        """The message search's lower bound: local midnight `within` days back (None: all)."""
        days = WITHIN_DAYS[self.within]
        if days is None:
            return None
        start = now.date() - timedelta(days=days)
        return datetime.combine(start, time(0), tzinfo=now.tzinfo).isoformat()

    def api_params(self, limit: int = LIMIT) -> list[tuple[str, str]]:
        """The ops API's `GET /cases` parameters."""
        out: list[tuple[str, str]] = [("limit", str(limit))]
        if "any" not in self.state:
            if "open" in self.state:
                out.append(("open_only", "true"))
            out += [("state", s) for s in self.state if s != "open"]
        out += [("priority", p) for p in self.priority]
        out += [("category", c) for c in self.category]
        out += [("channel", c) for c in self.channel]
        if self.unit:
            out.append(("unit", self.unit))
        if self.district:
            out.append(("location", self.district))
        if self.q:
            out.append(("q", self.q))
        return out

    def query_string(self) -> list[tuple[str, str]]:
        """The filters as the console's own query string (for links and refreshes)."""
        out = [("state", s) for s in self.state]
        out += [("priority", p) for p in self.priority]
        out += [("category", c) for c in self.category]
        out += [("channel", c) for c in self.channel]
        for name in ("unit", "district", "q"):
            value = getattr(self, name)
            if value:
                out.append((name, value))
        if self.sort != "newest":
            out.append(("sort", self.sort))
        if self.within != "today":
            out.append(("within", self.within))
        return out

    @property
    def active(self) -> bool:
        return self != QueueFilters()


def pinned(case: Mapping[str, Any]) -> bool:
    """A P1 case nobody acknowledged yet."""
    return case.get("priority") == "P1" and case.get("state") in UNACKNOWLEDGED


def arrange(
    urgent: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]], sort: str
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(pinned, the rest): unacknowledged P1s from both lists on top (newest first), then the
    filtered cases in the chosen order, each case once."""
    seen: set[str] = set()
    top: list[Mapping[str, Any]] = []
    for case in [*urgent, *items]:
        if pinned(case) and case["case_id"] not in seen:
            seen.add(case["case_id"])
            top.append(case)
    top.sort(key=lambda c: str(c.get("opened_at", "")), reverse=True)
    rest = [c for c in items if c["case_id"] not in seen]
    rest.sort(key=lambda c: str(c.get("opened_at", "")), reverse=True)
    if sort == "urgent":
        rest.sort(
            key=lambda c: (
                PRIORITY_RANK.get(str(c.get("priority")), 9),
                0 if c.get("state") in UNACKNOWLEDGED else 1,
            )
        )
    return top, rest
