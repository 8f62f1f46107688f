"""Daily statistics as the Director reports them (pure folding of the database's counts).

"Trung bình mỗi ngày, tôi nhận 30-40 tin nhắn, trong đó 10-15 tin phản ánh vụ việc, còn lại tin
nhắn chào": messages = every citizen contact of the local day; reports = the ones that opened or
joined a case (and missed calls, which become callback tasks); greetings = the rest. Officers'
"OK HUE-..." replies are counted apart, they are not citizens' messages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from hotline.clock import ensure_utc
from hotline_dispatcher.text import count_places

REPORT_ACTIONS = frozenset({"new_case", "merged", "followup", "callback"})


@dataclass
class ChannelCounts:
    messages: int = 0
    reports: int = 0
    greetings: int = 0


@dataclass
class DailyCounts:
    date: str
    messages: int = 0
    reports: int = 0
    greetings: int = 0
    callbacks: int = 0
    new_cases: int = 0
    merged: int = 0
    followups: int = 0
    officer_replies: int = 0
    by_channel: dict[str, ChannelCounts] = field(default_factory=dict)
    by_category: Counter[str] = field(default_factory=Counter)
    by_unit: Counter[str] = field(default_factory=Counter)
    by_priority: Counter[str] = field(default_factory=Counter)
    by_district: Counter[str] = field(default_factory=Counter)
    by_locality: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Reports per (district, locality) they name: where the day's incidents were."""

    def top_places(self, n: int = 10) -> list[tuple[str, str, int]]:
        """The `n` places most reports named: (district, locality, reports), most first; names
        of one place ("Phú Đa", "chợ Phú Đa") count together (`text.count_places`)."""
        per_district: dict[str, Counter[str]] = {}
        for (district, locality), count in self.by_locality.items():
            per_district.setdefault(district, Counter())[locality] += count
        ranked = sorted(
            (
                (district, place, count)
                for district, counts in per_district.items()
                for place, count in count_places(counts)
            ),
            key=lambda row: (-row[2], row[0], row[1]),
        )
        return ranked[:n]


def fold_daily(day: str, rows: Iterable[dict[str, Any]]) -> DailyCounts:
    """Fold `Repository.daily_counts` rows (grouped by action, channel, category, unit, priority,
    district and locality)."""
    out = DailyCounts(date=day)
    for row in rows:
        key = row["_id"]
        n = int(row["n"])
        action = str(key.get("action"))
        if action == "acknowledgement":
            out.officer_replies += n
            continue
        channel = str(key.get("channel"))
        counts = out.by_channel.setdefault(channel, ChannelCounts())
        out.messages += n
        counts.messages += n
        if action == "greeting":
            out.greetings += n
            counts.greetings += n
            continue
        if action in REPORT_ACTIONS:
            out.reports += n
            counts.reports += n
            out.by_category[str(key.get("category"))] += n
            out.by_priority[str(key.get("priority"))] += n
            out.by_district[str(key.get("location") or "unknown")] += n
            if key.get("locality"):
                out.by_locality[(str(key.get("location")), str(key["locality"]))] += n
            if key.get("unit"):
                out.by_unit[str(key["unit"])] += n
        if action == "new_case":
            out.new_cases += n
        elif action == "merged":
            out.merged += n
        elif action == "followup":
            out.followups += n
        elif action == "callback":
            out.callbacks += n
    return out


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def time_to_acknowledge(
    cases: Iterable[dict[str, Any]],
) -> dict[str, tuple[int, int, float | None]]:
    """Per priority: (cases, cases acknowledged, median seconds from report to acknowledgement).

    Callback tasks are left out: their "acknowledgement" is the call back, not an alert taken.
    """
    waits: dict[str, list[float]] = {}
    totals: Counter[str] = Counter()
    for case in cases:
        if case.get("kind") == "callback":
            continue
        priority = str(case.get("priority"))
        waits.setdefault(priority, [])
        totals[priority] += 1
        ack, received = case.get("acknowledged_at"), case.get("received_at")
        if ack is not None and received is not None:
            wait = (ensure_utc(ack) - ensure_utc(received)).total_seconds()
            waits[priority].append(max(0.0, wait))
    return {p: (totals[p], len(v), median(v)) for p, v in sorted(waits.items())}


def by_hour(rows: Iterable[dict[str, Any]], tz: tzinfo) -> dict[int, ChannelCounts]:
    """Citizens' messages per local hour of the day, with reports and greetings apart."""
    out = {h: ChannelCounts() for h in range(24)}
    for row in rows:
        action = str(row.get("action"))
        if action == "acknowledgement" or row.get("at") is None:
            continue
        hour = ensure_utc(row["at"]).astimezone(tz).hour
        out[hour].messages += 1
        if action == "greeting":
            out[hour].greetings += 1
        elif action in REPORT_ACTIONS:
            out[hour].reports += 1
    return out
