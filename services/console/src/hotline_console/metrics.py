"""The console's metrics (names in one place; labels bounded: actions, outcomes, topics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SSE_CLIENTS = Gauge("hotline_console_sse_clients", "Browsers connected to the live stream")
LIVE_EVENTS = Counter(
    "hotline_console_live_events_total",
    "Events consumed for the live view, by topic",
    ["topic"],
)
ACTIONS = Counter(
    "hotline_console_actions_total",
    "Actions submitted through the console, by action and outcome (ok, rejected, error)",
    ["action", "outcome"],
)
SIGN_INS = Counter(
    "hotline_console_sign_ins_total",
    "Sign-in attempts, by outcome (ok, invalid, limited, unavailable, csrf)",
    ["outcome"],
)
SIGN_OUTS = Counter(
    "hotline_console_sign_outs_total",
    "Sign-outs, by outcome (shared: the dispatcher refuses the session for every replica; "
    "local: it could not be told, only this replica refuses it)",
    ["outcome"],
)
CSRF_REJECTED = Counter("hotline_console_csrf_rejected_total", "Forms refused for their CSRF token")
UPSTREAM_ERRORS = Counter(
    "hotline_console_upstream_errors_total",
    "Calls to the dispatcher or ingest that could not be made",
    ["upstream"],
)
