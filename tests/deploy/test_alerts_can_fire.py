"""Alerts in deploy/prometheus/rules.yml that can actually fire on what the services export.

The series an alert reads exist from the start, and promtool, given series labelled as the
services export them, fires the alert (and not its neighbours).

`HotlineDeadLettersAppearing` is `increase(hotline_deadletters_total[10m]) > 0`: a counter series
that first appears already at 1 has no earlier sample, so `increase()` misses the first dead
letter. Every consumer therefore exports its dead-letter series at 0 from the start, one per
(service, source topic, reason), with reasons from the bounded DeadLetterReason enum.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
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


def test_ingest_exports_its_flood_series_before_the_first_flood() -> None:
    """HotlineIngestFloodLimited is a rate() of hotline_ingest_flood_limited_total per channel:
    every channel whose floods are published flagged (the providers; the web form and the desk
    answer 429 instead) has its series from the start."""
    from hotline.contracts.labels import Channel
    from hotline_ingest.metrics import prime

    assert "rate(hotline_ingest_flood_limited_total[" in RULES.read_text()
    prime()
    for channel in set(Channel) - {Channel.WEB, Channel.DESK}:
        value = REGISTRY.get_sample_value(
            "hotline_ingest_flood_limited_total", {"channel": channel.value}
        )
        assert value is not None, channel


# --------------------------------------------------------------------------- firing, by promtool

FIRING = 'count by (alertname, service, topic, channel, reason) (ALERTS{alertstate="firing"})'
"""What fires, one sample per alert and the labels these tests tell apart."""


def assert_fires(
    tmp_path: Path, series: dict[str, str], at: str, expected: list[dict[str, str]]
) -> None:
    """Evaluate rules.yml (recording rules included) on `series` (promtool's expanding notation,
    one sample every 30 s) and expect exactly the alerts `expected` to be firing at `at`."""
    from deploy.check.tools import promtool

    def labels(d: dict[str, str]) -> str:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(d.items())) + "}"

    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "30s",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [
                    {
                        "expr": FIRING,
                        "eval_time": at,
                        "exp_samples": [{"labels": labels(e), "value": 1} for e in expected],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "alerts-test.yml"
    path.write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [str(promtool()), "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


INGEST = 'job="ingest", service="ingest", instance="10.0.0.7:8001"'


def test_the_lag_alert_fires_for_the_classifier(tmp_path: Path) -> None:
    """The classifier's lag series, labelled as the agent exports it (one per partition), feed
    the recording rule and HotlineConsumerLagGrowing like the runner's do."""
    lag = 'hotline_consumer_lag_messages{service="classifier", topic="hotline.inbound.v1"'
    series = {
        f'{lag}, partition="0", job="classifier"}}': "0+20x60",  # +40 a minute
        f'{lag}, partition="1", job="classifier"}}': "5x60",  # steady
    }
    lagging = {
        "alertname": "HotlineConsumerLagGrowing",
        "service": "classifier",
        "topic": "hotline.inbound.v1",
    }
    assert_fires(tmp_path, series, "9m", [])  # over 100 and growing since 2.5 min: pending
    assert_fires(tmp_path, series, "20m", [lagging])


def test_a_provider_flood_fires_the_flood_alert_not_the_rejection_alert(tmp_path: Path) -> None:
    """A Zalo sender over its rate: its items are accepted and flagged, none rejected."""
    series = {
        f'hotline_ingest_accepted_total{{channel="zalo", kind="message", {INGEST}}}': "0+40x60",
        f'hotline_ingest_flood_limited_total{{channel="zalo", {INGEST}}}': "0+30x60",  # 1/s
        f'hotline_ingest_rejected_total{{channel="zalo", reason="rate_limited", {INGEST}}}': (
            "0x60"
        ),
    }
    assert_fires(tmp_path, series, "9m", [])  # pending: `for: 10m`
    assert_fires(
        tmp_path, series, "20m", [{"alertname": "HotlineIngestFloodLimited", "channel": "zalo"}]
    )


def test_a_few_flagged_items_fire_nothing(tmp_path: Path) -> None:
    """One item every 30 s over a sender's rate is a chatty citizen, not a flood."""
    series = {
        f'hotline_ingest_accepted_total{{channel="sms", kind="message", {INGEST}}}': "0+10x60",
        f'hotline_ingest_flood_limited_total{{channel="sms", {INGEST}}}': "0+1x60",
    }
    assert_fires(tmp_path, series, "25m", [])


def test_the_web_form_refusing_a_flood_fires_the_rejection_alert(tmp_path: Path) -> None:
    """The web form answers 429 (rate_limited) to an address over its rate: rejections."""
    series = {
        f'hotline_ingest_accepted_total{{channel="web", kind="message", {INGEST}}}': "0+5x60",
        f'hotline_ingest_rejected_total{{channel="web", reason="rate_limited", {INGEST}}}': (
            "0+30x60"
        ),
    }
    rejecting = {
        "alertname": "HotlineIngestRejectionsSpiking",
        "channel": "web",
        "reason": "rate_limited",
    }
    assert_fires(tmp_path, series, "15m", [rejecting])
