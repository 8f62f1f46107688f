"""The dispatcher's metrics; names are part of the architecture contract (docs/architecture.md).

Labels are bounded: units come from configuration, priorities, actions and reasons are enums.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from hotline.metrics import LATENCY_BUCKETS

DECISIONS = Counter(
    "hotline_dispatcher_decisions_total",
    "Dispatch decisions, by responsible unit, priority and action",
    ["unit", "priority", "action"],
)
OPEN_CASES = Gauge(
    "hotline_dispatcher_open_cases",
    "Open cases (new, assigned, acknowledged) by responsible unit and priority",
    ["unit", "priority"],
)
ASSIGNMENT_SECONDS = Histogram(
    "hotline_dispatcher_assignment_seconds",
    "Time from the report's received_at to the dispatch decision",
    buckets=LATENCY_BUCKETS,
)
MERGES = Counter(
    "hotline_dispatcher_merges_total",
    "Reports that joined an open case instead of opening one, by reason",
    ["reason"],
)
KEPT_APART = Counter(
    "hotline_dispatcher_kept_apart_total",
    "Reports that opened a case although an open case was alike, because the two name different "
    "places, by what differed (locality or address)",
    ["by"],
)
CALLBACKS = Counter("hotline_dispatcher_callbacks_total", "Callback tasks created for missed calls")
OVERDUE_DIRECTIVES = Gauge(
    "hotline_dispatcher_overdue_directives",
    "Directives whose report-back deadline passed without a report",
)
UNACKNOWLEDGED_OVERDUE = Gauge(
    "hotline_dispatcher_unacknowledged_overdue_cases",
    "Cases assigned but not acknowledged for longer than their priority's first timeout",
    ["priority"],
)
GREETINGS = Counter(
    "hotline_dispatcher_greetings_total",
    "Greetings logged for statistics (no case), by channel",
    ["channel"],
)
