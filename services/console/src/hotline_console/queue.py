"""The live queue's filters, order and pages.

P1 cases nobody has acknowledged yet are pinned above everything, whatever the filters, the
order and the page, until someone acknowledges them. The filtered cases below them are most
urgent first by default (by priority, newest first within a priority) or newest first, a page
at a time.

The ops API lists cases newest first only, so the urgent order is put together from one list
per priority: their concatenation *is* that order, and a page of it is a slice of one or two of
them (`slices`), asked for with the API's own offset and limit. The arithmetic is pure;
`load_page` does the asking through the function it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any

from hotline.contracts.labels import Category, Channel, District, Priority

STATES = ("new", "assigned", "acknowledged", "resolved", "closed")
WITHIN_DAYS: dict[str, int | None] = {"today": 0, "7d": 6, "30d": 29, "all": None}
"""How far back the message search goes: today, the last 7 or 30 days (today included), or
every day kept."""
UNACKNOWLEDGED = frozenset({"new", "assigned"})
PRIORITIES = tuple(p.value for p in Priority)
"""Most urgent first (every case has one of these)."""
SORTS = ("urgent", "newest")
MAX_PAGE = 10_000


def _pick(values: Iterable[str], allowed: Iterable[str]) -> list[str]:
    ok = set(allowed)
    return [v for v in dict.fromkeys(values) if v in ok]


def _page(value: str | None) -> int:
    try:
        number = int(value or 1)
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


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
    sort: str = "urgent"
    within: str = "today"
    page: int = 1

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
        sort = one("sort")
        page = one("page")
        return cls(
            state=state,
            priority=_pick(params.get("priority", []), [p.value for p in Priority]),
            category=_pick(params.get("category", []), [c.value for c in Category]),
            channel=_pick(params.get("channel", []), [c.value for c in Channel]),
            unit=one("unit"),
            district=district if district in {d.value for d in District} else None,
            q=q[:200] if q else None,
            sort=sort if sort in SORTS else "urgent",
            within=within if within in WITHIN_DAYS else "today",
            page=_page(page),
        )

    def messages_since(self, now: datetime) -> str | None:
        """The message search's lower bound: local midnight `within` days back (None: all)."""
        days = WITHIN_DAYS[self.within]
        if days is None:
            return None
        start = now.date() - timedelta(days=days)
        return datetime.combine(start, time(0), tzinfo=now.tzinfo).isoformat()

    def api_params(self, priorities: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """The ops API's `GET /cases` filter parameters (paging is `load_page`'s);
        `priorities` stands in for the priority filter (one list of the urgent order)."""
        out: list[tuple[str, str]] = []
        if "any" not in self.state:
            if "open" in self.state:
                out.append(("open_only", "true"))
            out += [("state", s) for s in self.state if s != "open"]
        out += [("priority", p) for p in (self.priority if priorities is None else priorities)]
        out += [("category", c) for c in self.category]
        out += [("channel", c) for c in self.channel]
        if self.unit:
            out.append(("unit", self.unit))
        if self.district:
            out.append(("location", self.district))
        if self.q:
            out.append(("q", self.q))
        return out

    def buckets(self) -> list[list[str]]:
        """The lists whose concatenation is the chosen order, each asked of the ops API newest
        first: one per priority the filter allows (most urgent first), or a single one (newest
        first; an empty priority list means any priority)."""
        if self.sort == "newest":
            return [list(self.priority)]
        return [[p] for p in PRIORITIES if not self.priority or p in self.priority]

    def query_string(self, page: int | None = None) -> list[tuple[str, str]]:
        """The filters as the console's own query string (for links); `page` replaces the
        current page (the first page is left out)."""
        out = [("state", s) for s in self.state]
        out += [("priority", p) for p in self.priority]
        out += [("category", c) for c in self.category]
        out += [("channel", c) for c in self.channel]
        for name in ("unit", "district", "q"):
            value = getattr(self, name)
            if value:
                out.append((name, value))
        if self.sort != "urgent":
            out.append(("sort", self.sort))
        if self.within != "today":
            out.append(("within", self.within))
        page = self.page if page is None else page
        if page > 1:
            out.append(("page", str(page)))
        return out

    @property
    def active(self) -> bool:
        """Anything chosen but the page (the page alone does not offer "clear")."""
        return replace(self, page=1) != QueueFilters()


def pinned(case: Mapping[str, Any]) -> bool:
    """A P1 case nobody acknowledged yet."""
    return case.get("priority") == "P1" and case.get("state") in UNACKNOWLEDGED


def arrange(
    urgent: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(pinned, the rest): unacknowledged P1s from both lists on top (newest first), then the
    page's other cases in the order they came, each case once."""
    seen: set[str] = set()
    top: list[Mapping[str, Any]] = []
    items = list(items)
    for case in [*urgent, *items]:
        if pinned(case) and case["case_id"] not in seen:
            seen.add(case["case_id"])
            top.append(case)
    top.sort(key=lambda c: str(c.get("opened_at", "")), reverse=True)
    return top, [c for c in items if c["case_id"] not in seen]


@dataclass(frozen=True)
class Slice:
    """Part of one list: `limit` cases from `offset` of list number `bucket`."""

    bucket: int
    offset: int
    limit: int


def slices(totals: Sequence[int], offset: int, limit: int) -> list[Slice]:
    """The parts of the lists (of `totals` cases each, in order) that make positions
    [offset, offset + limit) of their concatenation."""
    out: list[Slice] = []
    start = 0
    for bucket, total in enumerate(totals):
        lo, hi = max(offset, start), min(offset + limit, start + total)
        if lo < hi:
            out.append(Slice(bucket, lo - start, hi - lo))
        start += total
    return out


def last_page(total: int, size: int) -> int:
    return max(1, -(-total // size))


@dataclass(frozen=True)
class QueuePage:
    """One page of the filtered cases in the chosen order.

    `total` counts every case the filters match, the pinned ones among them: positions
    `first`..`last` are positions in that whole list, and the unacknowledged P1s of a page are
    shown in the pinned block rather than in its rows."""

    items: list[Mapping[str, Any]]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return last_page(self.total, self.size)

    @property
    def first(self) -> int:
        return min((self.number - 1) * self.size + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.number * self.size, self.total)


Fetch = Callable[[list[str], int, int], Awaitable[Mapping[str, Any]]]
"""`GET /cases` with the filters, one list's priorities, offset and limit: {items, total}."""


async def load_page(fetch: Fetch, filters: QueueFilters, size: int) -> QueuePage:
    """The page `filters.page` of `size` cases (the last page if there are fewer pages now).

    Newest first is one list: one call (two when the page asked for is gone). Most urgent first
    is one list per priority: the first page asks each for its first `size` cases (their totals
    come with them); a later page first asks each for its total, then for the slices the page
    is made of. Totals and slices are two reads, so a case that changes in between can be seen
    twice or not at all at a page's edge until the next refresh (within a second, or 30 s)."""
    buckets = filters.buckets()
    number = filters.page
    if len(buckets) == 1:
        found = await fetch(buckets[0], (number - 1) * size, size)
        total = int(found["total"])
        if not found["items"] and number > last_page(total, size):
            number = last_page(total, size)
            found = await fetch(buckets[0], (number - 1) * size, size)
            total = int(found["total"])
        return QueuePage(list(found["items"]), total, number, size)
    if number == 1:
        firsts = await asyncio.gather(*(fetch(b, 0, size) for b in buckets))
        items = [c for found in firsts for c in found["items"]][:size]
        return QueuePage(items, sum(int(f["total"]) for f in firsts), 1, size)
    counted = await asyncio.gather(*(fetch(b, 0, 1) for b in buckets))
    totals = [int(found["total"]) for found in counted]
    number = min(number, last_page(sum(totals), size))
    parts = slices(totals, (number - 1) * size, size)
    found_parts = await asyncio.gather(
        *(fetch(buckets[p.bucket], p.offset, p.limit) for p in parts)
    )
    items = [c for found in found_parts for c in found["items"]]
    return QueuePage(items, sum(totals), number, size)
