"""Classifier metrics (names are part of docs/architecture.md)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from hotline.metrics import LATENCY_BUCKETS

TRIAGED = Counter(
    "hotline_classifier_triaged_total",
    "Inbound events triaged, by category and priority",
    ["category", "priority"],
)
TRIAGE_SECONDS = Histogram(
    "hotline_classifier_triage_seconds",
    "Time the triage engine spent per event (batch time divided by batch size)",
    buckets=LATENCY_BUCKETS,
)
CONFIDENCE = Histogram(
    "hotline_classifier_confidence",
    "Model confidence in the chosen category",
    buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
