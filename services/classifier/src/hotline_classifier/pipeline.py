"""The classifier's processing step, pure apart from the clock: inbound events → triaged events.

Kept apart from the faust agent so it is testable without Kafka and reusable by the benchmark.
The same input always gives the same triage (the model is deterministic), so reprocessing after
a crash republishes an identical event under the same event id; downstream deduplicates by it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from hotline.clock import LOCAL_TZ, Clock
from hotline.contracts import InboundEvent, Triage, TriagedEvent
from hotline_classifier.engine import TriageEngine
from hotline_classifier.metrics import CONFIDENCE, TRIAGE_SECONDS, TRIAGED


def text_for_triage(event: InboundEvent) -> str:
    """The text the engine reads: message or transcript, plus a place typed into a form."""
    text = event.text or ""
    if event.place:
        text = f"{text}\n{event.place}" if text else event.place
    return text


def triage_events(
    engine: TriageEngine, events: Sequence[InboundEvent], clock: Clock
) -> list[TriagedEvent]:
    """Triage a batch of inbound events in one engine call."""
    if not events:
        return []
    start = time.perf_counter()
    results = engine.triage_many(
        [text_for_triage(e) for e in events],
        [e.channel.value for e in events],
        [e.kind.value for e in events],
        # Relative times ("tối qua", "sáng nay") are read on the local clock of the event.
        [e.occurred_at.astimezone(LOCAL_TZ) for e in events],
    )
    per_event = (time.perf_counter() - start) / len(events)
    now = clock.now()
    out = []
    for event, result in zip(events, results, strict=True):
        triage = Triage(
            category=result.category,
            actionable=result.actionable,
            priority=result.priority,
            location=result.location,
            language=result.language,
            confidence=round(float(result.confidence), 4),
            reasons=list(result.reasons),
            model_version=result.model_version,
            triaged_at=now,
        )
        out.append(TriagedEvent(**dict(event), triage=triage))
        TRIAGED.labels(result.category, result.priority).inc()
        TRIAGE_SECONDS.observe(per_event)
        CONFIDENCE.observe(result.confidence)
    return out
