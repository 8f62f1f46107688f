"""Ingest metrics, named exactly as docs/architecture.md lists them (dashboards rely on it).

Labels are bounded: channels (the `Channel` enum), kinds (`InboundKind`), the rejection reasons
below, and provider event names mapped to a fixed vocabulary by each parser (`other` beyond it).
Request counts and latency come from the shared `hotline_http_*` middleware.

`prime()` (called when the app is built) creates every per-channel series at 0, so that
rate/increase-based alerts and ratios (the ingest rejection ratio) see 0 rather than no series
at all for a channel or a reason that has not happened since the process started.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Histogram

from hotline.contracts.labels import Channel, InboundKind
from hotline.metrics import LATENCY_BUCKETS


class Rejection(StrEnum):
    """Why a request (or one item of it) was refused: the `reason` label."""

    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"  # web form and desk only (429); provider floods are flagged
    UNAUTHORIZED = "unauthorized"


# The kinds each channel's parsers produce (providers/*.py): the accepted series to pre-create.
KINDS_BY_CHANNEL: dict[Channel, tuple[InboundKind, ...]] = {
    Channel.SMS: (InboundKind.MESSAGE,),
    Channel.ZALO: (InboundKind.MESSAGE,),
    Channel.VIBER: (InboundKind.MESSAGE,),
    Channel.WHATSAPP: (InboundKind.MESSAGE,),
    Channel.TELEGRAM: (InboundKind.MESSAGE,),
    Channel.VOICE: (InboundKind.CALL_MISSED, InboundKind.CALL_ANSWERED, InboundKind.VOICEMAIL),
    Channel.WEB: (InboundKind.MESSAGE,),
    Channel.DESK: (InboundKind.CALL_SUMMARY,),
}

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
FLOOD_LIMITED = Counter(
    "hotline_ingest_flood_limited_total",
    "Provider items from a sender over its rate, published flagged `flood_limited` "
    "(also counted in hotline_ingest_accepted_total), by channel",
    ["channel"],
)
UNMARKED_CLAIMS = Counter(
    "hotline_ingest_unmarked_claims_total",
    "Published deliveries whose dedup claim could not be marked published (a retry after the "
    "in-flight window republishes them under the same event id)",
)


def prime() -> None:
    """Create every bounded per-channel series at 0 (idempotent)."""
    for channel in Channel:
        for kind in KINDS_BY_CHANNEL.get(channel, tuple(InboundKind)):
            ACCEPTED.labels(channel.value, kind.value)
        for reason in Rejection:
            REJECTED.labels(channel.value, reason.value)
        DUPLICATES.labels(channel.value)
        UNAVAILABLE.labels(channel.value)
        if channel not in (Channel.WEB, Channel.DESK):  # those answer 429 instead
            FLOOD_LIMITED.labels(channel.value)
