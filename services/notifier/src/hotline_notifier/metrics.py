"""The notifier's metrics; names are the contract in docs/architecture.md."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from hotline.metrics import LATENCY_BUCKETS

NOTIFICATIONS = Counter(
    "hotline_notifier_notifications_total",
    "Notifications by channel, purpose and outcome (sent, failed, dead, suppressed)",
    ["channel", "purpose", "outcome"],
)
PROVIDER_SECONDS = Histogram(
    "hotline_notifier_provider_seconds",
    "Time a provider took to answer one send request",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
ESCALATIONS = Counter(
    "hotline_notifier_escalations_total", "Escalation steps taken, by level reached", ["level"]
)
ACK_LATENCY = Histogram(
    "hotline_notifier_ack_latency_seconds",
    "First alert sent → acknowledgement, by priority",
    ["priority"],
    buckets=LATENCY_BUCKETS,
)
UNACKNOWLEDGED = Gauge(
    "hotline_notifier_unacknowledged_alerts",
    "Alerted cases still waiting for an acknowledgement, by priority",
    ["priority"],
)
END_TO_END = Histogram(
    "hotline_notifier_end_to_end_seconds",
    "Report received_at → first alert accepted by a provider, by priority",
    ["priority"],
    buckets=LATENCY_BUCKETS,
)
CITIZEN_REPLIES = Counter(
    "hotline_notifier_citizen_replies_total",
    "Replies sent to citizens, by kind (receipt, courtesy, closure) and channel",
    ["kind", "channel"],
)
ACK_REJECTED = Counter(
    "hotline_notifier_ack_rejected_total",
    "Acknowledgement links refused, by reason (forged, expired, replayed, wrong_recipient)",
    ["reason"],
)
