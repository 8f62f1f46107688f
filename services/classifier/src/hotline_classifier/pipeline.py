"""The classifier's processing step: inbound events → triaged events.

Kept apart from the faust agent so it is testable without Kafka and reusable by the benchmark.
The triage fields (category, actionable, priority, location, locality, language, confidence,
reasons, model_version) are a pure function of the event and the model (the model is
deterministic, and relative times are read against the event's own ``occurred_at``, not the
clock); ``triaged_at`` records when they were computed, from the clock. Reprocessing after a
crash therefore republishes the same triage under the same event id, with a later
``triaged_at``; downstream deduplicates by the event id.
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
    """Triage a batch of inbound events in one engine call (``triaged_at``: ``clock.now()``)."""
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
            locality=result.locality,
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
