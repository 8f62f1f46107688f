"""The topic registry: every Kafka topic Hotline uses, described once.

Kubernetes `KafkaTopic` resources (deploy/k8s) and the local "ensure topics" step are both
checked against this table by tests, so a topic is renamed or resized here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from hotline.contracts.events import (
    CaseEvent,
    DeadLetter,
    DeliveryOutcome,
    DispatchDecision,
    InboundEvent,
    TriagedEvent,
)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, shape, and who writes and reads it."""

    name: str
    value_model: type[BaseModel]
    key: str
    description: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    partitions: int = 6
    replication_factor: int = 3
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: str = "delete"
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """Topic-level Kafka config (the same locally and in the Strimzi `KafkaTopic`)."""
        cfg = {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": "2",
        }
        cfg.update(self.extra_config)
        return cfg


INBOUND = TopicSpec(
    name="hotline.inbound.v1",
    value_model=InboundEvent,
    key="channel:sender address (one citizen's messages stay in order)",
    description="Every verified, normalised citizen message or call event.",
    producers=("ingest",),
    consumers=("classifier",),
    retention_ms=14 * DAY_MS,
)
TRIAGED = TopicSpec(
    name="hotline.triaged.v1",
    value_model=TriagedEvent,
    key="same as inbound",
    description="The inbound event plus its triage block (category, priority, location...).",
    producers=("classifier",),
    consumers=("dispatcher",),
    retention_ms=14 * DAY_MS,
)
DISPATCHED = TopicSpec(
    name="hotline.dispatched.v1",
    value_model=DispatchDecision,
    key="case id (or the event id when no case)",
    description="Routing decisions: case, responsible unit, assignee, escalation chain.",
    producers=("dispatcher",),
    consumers=("notifier", "console"),
)
CASE_EVENTS = TopicSpec(
    name="hotline.case-events.v1",
    value_model=CaseEvent,
    key="case id",
    description="Case changes: acknowledgements, resolutions, reassignments, directives.",
    producers=("dispatcher", "notifier", "console"),
    consumers=("dispatcher", "notifier", "console"),
    retention_ms=30 * DAY_MS,
)
DELIVERIES = TopicSpec(
    name="hotline.deliveries.v1",
    value_model=DeliveryOutcome,
    key="case id (or recipient id)",
    description="Outcome of every outbound alert and citizen reply.",
    producers=("notifier",),
    consumers=("dispatcher", "console"),
)
DEADLETTER = TopicSpec(
    name="hotline.deadletter.v1",
    value_model=DeadLetter,
    key="the original message key",
    description="Messages a service could not process, with the reason; replayable.",
    producers=("ingest", "classifier", "dispatcher", "notifier"),
    consumers=("operators (hotline replay-deadletters)",),
    partitions=3,
    retention_ms=30 * DAY_MS,
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    INBOUND,
    TRIAGED,
    DISPATCHED,
    CASE_EVENTS,
    DELIVERIES,
    DEADLETTER,
)


@dataclass(frozen=True)
class TopicNames:
    """Resolved topic names for one deployment (a namespace prefix isolates tests)."""

    inbound: str
    triaged: str
    dispatched: str
    case_events: str
    deliveries: str
    deadletter: str

    @classmethod
    def for_namespace(cls, namespace: str = "") -> TopicNames:
        prefix = f"{namespace}." if namespace else ""
        return cls(
            inbound=prefix + INBOUND.name,
            triaged=prefix + TRIAGED.name,
            dispatched=prefix + DISPATCHED.name,
            case_events=prefix + CASE_EVENTS.name,
            deliveries=prefix + DELIVERIES.name,
            deadletter=prefix + DEADLETTER.name,
        )

    def all(self) -> list[str]:
        return [
            self.inbound,
            self.triaged,
            self.dispatched,
            self.case_events,
            self.deliveries,
            self.deadletter,
        ]

    def spec_for(self, name: str) -> TopicSpec:
        for resolved, spec in zip(self.all(), ALL_TOPICS, strict=True):
            if resolved == name:
                return spec
        raise KeyError(name)
