"""Ingest metrics, named exactly as docs/architecture.md lists them (dashboards rely on it).

Labels are bounded: channels (the `Channel` enum), kinds (`InboundKind`), the rejection reasons
below, and provider event names mapped to a fixed vocabulary by each parser (`other` beyond it).
Request counts and latency come from the shared `hotline_http_*` middleware.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Histogram

from hotline.metrics import LATENCY_BUCKETS


class Rejection(StrEnum):
    """Why a request (or one item of it) was refused: the `reason` label."""

    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"


ACCEPTED = Counter(
    "hotline_ingest_accepted_total",
    "Inbound items published to hotline.inbound.v1 (broker acknowledged), by channel and kind",
    ["channel", "kind"],
)
REJECTED = Counter(
    "hotline_ingest_rejected_total",
    "Requests or items refused, by channel and reason",
    ["channel", "reason"],
)
DUPLICATES = Counter(
    "hotline_ingest_duplicates_total",
    "Provider retries of an already-published delivery (answered 2xx, not published again)",
    ["channel"],
)
IGNORED = Counter(
    "hotline_ingest_ignored_events_total",
    "Provider events acknowledged but not citizen messages (receipts, statuses, handshakes)",
    ["channel", "event"],
)
PUBLISH_SECONDS = Histogram(
    "hotline_ingest_publish_seconds",
    "Time from handing a request's events to the producer until the broker acknowledged them",
    buckets=LATENCY_BUCKETS,
)
UNAVAILABLE = Counter(
    "hotline_ingest_unavailable_total",
    "503 answers (broker or dedup store unavailable or slow), by channel",
    ["channel"],
)
