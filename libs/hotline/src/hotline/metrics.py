"""Metrics shared by every service (the Kafka runner, HTTP, build info) and the /metrics helper.

Each service defines its own domain metrics in one module (`hotline_<service>/metrics.py`);
the names defined here are the ones the shared code increments. Labels are bounded enums
(service, topic, outcome, reason, partition): never a phone number, id or free text.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)

BUILD_INFO = Gauge(
    "hotline_build_info", "Service build information (value is always 1)", ["service", "version"]
)

CONSUMED = Counter(
    "hotline_consumer_messages_total",
    "Messages taken from a topic by the consume-process-produce runner, by outcome",
    ["service", "topic", "outcome"],
)
PROCESSING_SECONDS = Histogram(
    "hotline_consumer_processing_seconds",
    "Time to process one poll's batch of messages (handler and produce); for a pipelined "
    "runner (key_concurrency > 1: the notifier), one message",
    ["service", "topic"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "hotline_consumer_lag_messages",
    "Messages between the consumer's position and the partition's end",
    ["service", "topic", "partition"],
)
HANDLER_RETRIES = Counter(
    "hotline_consumer_retries_total",
    "Transient failures (database or broker unavailable) that paused consumption",
    ["service", "topic"],
)
DEADLETTERS = Counter(
    "hotline_deadletters_total",
    "Messages sent to the dead-letter topic, by source topic and reason",
    ["service", "source_topic", "reason"],
)
PRODUCED = Counter(
    "hotline_produced_messages_total",
    "Messages acknowledged by the broker, by topic",
    ["service", "topic"],
)
PRODUCER_RENEWALS = Counter(
    "hotline_kafka_producer_renewals_total",
    "Kafka producers replaced because the broker refused their idempotence state",
    ["service"],
)
HTTP_REQUESTS = Counter(
    "hotline_http_requests_total",
    "HTTP requests served, by route template and status class",
    ["service", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "hotline_http_request_seconds",
    "HTTP request latency by route template",
    ["service", "route"],
    buckets=LATENCY_BUCKETS,
)
MONGO_COMMAND_SECONDS = Histogram(
    "hotline_mongo_command_seconds",
    "Database round trips by command (find, insert, update, ...), collection and outcome",
    ["service", "command", "collection", "outcome"],
    buckets=LATENCY_BUCKETS,
)
DEPENDENCY_UP = Gauge(
    "hotline_dependency_up",
    "1 when the last readiness check of a dependency (kafka, mongodb) succeeded",
    ["service", "dependency"],
)


def render_latest(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The Prometheus text exposition of a registry and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
