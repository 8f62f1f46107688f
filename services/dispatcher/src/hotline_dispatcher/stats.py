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
from typing import Any

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


def fold_daily(day: str, rows: Iterable[dict[str, Any]]) -> DailyCounts:
    """Fold `Repository.daily_counts` rows (grouped by action/channel/category/unit/priority)."""
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
