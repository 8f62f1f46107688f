"""Alerts in deploy/prometheus/rules.yml that can actually fire on what the services export.

`HotlineDeadLettersAppearing` is `increase(hotline_deadletters_total[10m]) > 0`: a counter series
that first appears already at 1 has no earlier sample, so `increase()` misses the first dead
letter. Every consumer therefore exports its dead-letter series at 0 from the start, one per
(service, source topic, reason), with reasons from the bounded DeadLetterReason enum.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from hotline.contracts.events import DeadLetterReason
from hotline.contracts.topics import TopicNames

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules.yml"


def deadletters(service: str, source_topic: str, reason: str) -> float | None:
    return REGISTRY.get_sample_value(
        "hotline_deadletters_total",
        {"service": service, "source_topic": source_topic, "reason": reason},
    )


def test_the_dead_letter_alert_counts_with_increase() -> None:
    # If the alert stops using increase() on the counter, this file's premise needs a look.
    assert "increase(hotline_deadletters_total[" in RULES.read_text()


def test_a_runner_exports_its_dead_letter_series_before_the_first_dead_letter() -> None:
    from hotline.runner import Runner, RunnerConfig

    topics = TopicNames.for_namespace("alerts-fire")
    service = "alerts-fire-runner"
    Runner(
        consumer=None,  # type: ignore[arg-type] - constructing is enough
        publisher=None,  # type: ignore[arg-type]
        model=Any,  # type: ignore[arg-type]
        handler=None,  # type: ignore[arg-type]
        config=RunnerConfig(service, topics.case_events, topics.deadletter),
    )
    for reason in DeadLetterReason:
        assert deadletters(service, "hotline.case-events.v1", reason.value) == 0.0, reason


def test_the_classifier_exports_its_dead_letter_series_before_the_first_dead_letter(
    tmp_path: Path,
) -> None:
    pytest.importorskip("faust")
    from hotline.clock import SystemClock
    from hotline_classifier import app as app_module
    from hotline_classifier.settings import ClassifierSettings

    settings = ClassifierSettings(topic_namespace="alerts-fire", data_dir=tmp_path / "faust")
    app_module.Classifier(settings, None, SystemClock())  # type: ignore[arg-type]
    for reason in app_module.DEADLETTER_REASONS:
        # Exists (at 0 here; higher if other tests in this process dead-lettered already).
        assert deadletters("classifier", "hotline.inbound.v1", reason.value) is not None, reason
