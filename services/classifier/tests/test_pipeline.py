"""The processing step without Kafka: what reprocessing the same event gives."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

import hotline.contracts.events as events
from hotline.clock import ManualClock
from hotline.contracts import InboundEvent
from hotline_classifier.engine import TriageEngine
from hotline_classifier.pipeline import triage_events

EXAMPLE = json.loads((Path(events.__file__).parent / "examples" / "InboundEvent.json").read_text())
README = Path(__file__).resolve().parents[1] / "README.md"
TRIAGE_FIELDS = [
    "category",
    "actionable",
    "priority",
    "location",
    "locality",
    "language",
    "confidence",
    "reasons",
    "model_version",
]


@pytest.fixture(scope="module")
def engine() -> TriageEngine:
    return TriageEngine.load()


def test_triage_is_a_pure_function_of_the_event_and_triaged_at_is_the_clock(
    engine: TriageEngine,
) -> None:
    texts = [
        "Có người đánh nhau bằng dao ở chợ Đông Ba, cứu với",
        "cách đây 3 tiếng em bị trộm xe",
        "Sáng nay em bị mất chiếc xe đạp điện",  # read against the event's time, not the clock
        "",
    ]
    inbound = [InboundEvent.model_validate({**EXAMPLE, "text": t}) for t in texts]
    clock = ManualClock()
    first = triage_events(engine, inbound, clock)
    clock.advance(timedelta(hours=9))  # a restart the same day, in the afternoon
    second = triage_events(engine, inbound, clock)
    for a, b, event in zip(first, second, inbound, strict=True):
        assert a.triage.model_dump(include=set(TRIAGE_FIELDS)) == b.triage.model_dump(
            include=set(TRIAGE_FIELDS)
        )
        assert set(a.triage.model_dump()) == {*TRIAGE_FIELDS, "triaged_at"}
        assert a.model_dump(exclude={"triage"}) == event.model_dump()
        assert b.model_dump(exclude={"triage"}) == event.model_dump()
        assert b.triage.triaged_at - a.triage.triaged_at == timedelta(hours=9)
    assert first[0].triage.triaged_at == clock.now() - timedelta(hours=9)
    assert (first[0].triage.location, first[0].triage.locality) == ("hue_city", "chợ Đông Ba")


def test_readme_says_triaged_at_is_not_part_of_the_pure_function() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "Output is a pure function" not in text
    assert (
        "The triage fields (category, actionable, priority, location, locality, language,"
        " confidence, reasons, model_version) are a pure function of the event and the model;"
        " `triaged_at` records when they were computed"
    ) in text
