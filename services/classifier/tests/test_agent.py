"""The faust agent end to end on the real broker: inbound in → triaged out, poison → dead letter."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import hotline.contracts.events as events
from hotline.contracts import DeadLetter, InboundEvent, TopicNames, TriagedEvent, decode, encode
from hotline.ids import new_event_id
from hotline.testing.kafka import produce, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = json.loads((Path(events.__file__).parent / "examples" / "InboundEvent.json").read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _inbound(text: str, kind: str = "message") -> InboundEvent:
    data = dict(EXAMPLE)
    data.update(
        event_id=new_event_id(),
        text=text,
        kind=kind,
        provider_message_id=new_event_id(),
        received_at=datetime.now(UTC).isoformat(),
    )
    return InboundEvent.model_validate(data)


@pytest.fixture
def classifier_process(kafka_bootstrap: str, topics: TopicNames, namespace: str):  # type: ignore[no-untyped-def]
    port = _free_port()
    env = {
        **os.environ,
        "HOTLINE_TOPIC_NAMESPACE": namespace,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CLASSIFIER_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline_classifier.main"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"classifier exited at start-up:\n{out[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_agent_triages_and_dead_letters(
    kafka_bootstrap: str, topics: TopicNames, classifier_process: int
) -> None:
    reports = [
        _inbound("Có người đánh nhau bằng dao ở chợ Đông Ba, cứu với"),
        _inbound("chào anh, hôm nay chưa có gì"),
        _inbound("", kind="call_missed"),
    ]
    values = [encode(reports[0]), b"{broken json", encode(reports[1]), b"", encode(reports[2])]
    await produce(kafka_bootstrap, topics.inbound, values, key=b"zalo:citizen")

    out = await read_topic(kafka_bootstrap, topics.triaged, expect=3, timeout_s=45)
    triaged = [decode(TriagedEvent, r.value or b"") for r in out]
    assert [t.event_id for t in triaged] == [r.event_id for r in reports]
    knife, greeting, missed = triaged
    assert knife.triage.category.value == "violence"
    assert knife.triage.priority.value == "P1"
    assert knife.triage.location is not None and knife.triage.location.value == "hue_city"
    assert knife.triage.locality == "chợ Đông Ba"  # the place inside the district, for merging
    assert knife.triage.reasons
    assert greeting.triage.category.value == "greeting"
    assert greeting.triage.actionable is False
    assert (missed.triage.category.value, missed.triage.priority.value) == ("other", "P2")
    assert knife.text == reports[0].text  # the inbound event travels unchanged
    assert knife.triage.model_version

    dead = await read_topic(kafka_bootstrap, topics.deadletter, expect=2, timeout_s=10)
    letters = [decode(DeadLetter, r.value or b"") for r in dead]
    assert sorted(d.offset or 0 for d in letters) == [1, 3]
    assert {d.service for d in letters} == {"classifier"}
    assert all(d.detail for d in letters)

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{classifier_process}/metrics").read()
    assert b'hotline_classifier_triaged_total{category="violence",priority="P1"} 1.0' in metrics


async def test_a_batch_arriving_while_the_producer_starts_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a crash the restarted classifier meets a backlog: its first batch can arrive
    while the `prepare` task is still starting the producer. It must wait for the producer:
    raising would make faust's take_events ack the batch it never published (lost)."""

    from hotline.clock import SystemClock
    from hotline_classifier import app as app_module
    from hotline_classifier.engine import TriageEngine
    from hotline_classifier.settings import ClassifierSettings

    started = asyncio.Event()
    release = asyncio.Event()
    made: list[object] = []

    class SlowProducer:
        async def start(self) -> None:
            started.set()
            await release.wait()

    async def no_topics(*args: object, **kwargs: object) -> None:
        return None

    def make(*args: object, **kwargs: object) -> SlowProducer:
        made.append(SlowProducer())
        return made[-1]  # type: ignore[return-value]

    monkeypatch.setattr(app_module, "ensure_topics", no_topics)
    monkeypatch.setattr(app_module, "make_producer", make)
    settings = ClassifierSettings(topic_namespace="t-unit")
    classifier = app_module.Classifier(settings, TriageEngine.load(), SystemClock())
    prepare = asyncio.create_task(classifier.start_producer())
    await started.wait()  # `prepare` is inside producer.start()
    batch = asyncio.create_task(classifier.process_batch([]))
    await asyncio.sleep(0.05)
    assert not batch.done(), batch  # waiting for the producer, not crashed
    release.set()
    await asyncio.wait_for(asyncio.gather(prepare, batch), 5)
    assert len(made) == 1 and classifier.publisher is not None


def _classifier_samples(port: int, name: str) -> dict[str, float]:
    """`partition` (or "" without one) → value of a metric's classifier series."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        s.labels.get("partition", ""): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
        and s.labels.get("service") == "classifier"
        and s.labels.get("topic") == "hotline.inbound.v1"
    }


async def test_agent_exports_consumer_lag_and_batch_time(
    kafka_bootstrap: str, topics: TopicNames, classifier_process: int
) -> None:
    """The classifier exports the lag per partition from faust's consumer (its highwater minus
    the next offset to process), as the shared runner does: without it the lag alert and the
    dashboards' lag panels never see the classifier."""
    await produce(kafka_bootstrap, topics.inbound, [encode(_inbound("cháy nhà"))], key=b"sms:a")
    await produce(kafka_bootstrap, topics.inbound, [encode(_inbound("mất xe"))], key=b"zalo:b")
    inbound = await read_topic(kafka_bootstrap, topics.inbound, expect=2, timeout_s=10)
    partitions = {str(r.partition) for r in inbound}
    await read_topic(kafka_bootstrap, topics.triaged, expect=2, timeout_s=45)

    lags: dict[str, float] = {}
    deadline = time.monotonic() + 15  # exported right after the batch's publish is acknowledged
    while time.monotonic() < deadline and set(lags) != partitions:
        lags = _classifier_samples(classifier_process, "hotline_consumer_lag_messages")
        await asyncio.sleep(0.2)
    assert lags == dict.fromkeys(partitions, 0.0)  # caught up on the partitions it read
    batches = _classifier_samples(classifier_process, "hotline_consumer_processing_seconds_count")
    assert batches[""] >= 1
    retries = _classifier_samples(classifier_process, "hotline_consumer_retries_total")
    assert retries == {"": 0.0}
