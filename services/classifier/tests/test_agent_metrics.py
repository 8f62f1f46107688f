"""The agent exports the shared runner's consumer metrics (lag, batch time, retries) under the
same names and labels, so the lag alert and the classifier dashboard see it. No broker: faust's
consumer and the publisher are stand-ins, and the batches are poison (dead-lettered, which counts
as processed) so no model is needed; test_agent.py checks the same against Kafka."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import REGISTRY

from hotline.clock import SystemClock
from hotline.kafka import Outgoing, PublishError
from hotline_classifier.app import Classifier
from hotline_classifier.settings import ClassifierSettings

TOPIC = "hotline.inbound.v1"
POISON = b"{broken json"


def _event(topic: str, partition: int, offset: int, value: bytes) -> Any:
    """What faust's take_events yields: an event with its message's partition and offset."""
    message = SimpleNamespace(
        tp=TP(topic, partition), topic=topic, partition=partition, offset=offset, key=b"zalo:c"
    )
    return SimpleNamespace(message=message, value=value)


class FakeConsumer:
    """faust's consumer as the agent uses it: highwater per partition, the assignment."""

    def __init__(self, highwaters: dict[TP, int]) -> None:
        self.highwaters = highwaters
        self.assigned = set(highwaters)

    def highwater(self, tp: TP) -> int | None:
        assert tp in self.assigned, "Partition is not assigned"  # as aiokafka does
        return self.highwaters.get(tp)

    def assignment(self) -> set[TP]:
        return set(self.assigned)


class FlakyPublisher:
    """Refuses the first `failures` batches (the broker is away), then acknowledges."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.published: list[Outgoing] = []

    async def publish_many(self, outs: Iterable[Outgoing]) -> None:
        if self.failures:
            self.failures -= 1
            raise PublishError("broker unavailable")
        self.published.extend(outs)


def lag(partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "hotline_consumer_lag_messages",
        {"service": "classifier", "topic": TOPIC, "partition": str(partition)},
    )


def sample(name: str) -> float:
    value = REGISTRY.get_sample_value(name, {"service": "classifier", "topic": TOPIC})
    return value or 0.0


@pytest.fixture
def classifier(tmp_path: Path) -> Classifier:
    settings = ClassifierSettings(topic_namespace="t-agent-metrics", data_dir=tmp_path / "faust")
    return Classifier(settings, None, SystemClock())  # type: ignore[arg-type]  # no triage


async def test_a_batch_exports_lag_batch_time_and_retries(classifier: Classifier) -> None:
    topic = classifier.settings.topics.inbound
    p0, p3 = TP(topic, 0), TP(topic, 3)
    consumer = FakeConsumer({p0: 20, p3: 6})
    classifier.app.consumer = consumer  # type: ignore[assignment]
    publisher = FlakyPublisher(failures=1)
    classifier.publisher = publisher  # type: ignore[assignment]
    batches = sample("hotline_consumer_processing_seconds_count")
    retries = sample("hotline_consumer_retries_total")

    await classifier.process_batch(
        [
            _event(topic, 0, 10, POISON),
            _event(topic, 3, 5, POISON),
            _event(topic, 0, 11, POISON),
            _event(topic, 0, 12, b"\xff not utf-8"),
        ]
    )

    assert len(publisher.published) == 4  # the dead letters, after one refused attempt
    # The runner's arithmetic: highwater - (last offset processed + 1).
    assert lag(0) == 20 - 13
    assert lag(3) == 0
    assert sample("hotline_consumer_processing_seconds_count") == batches + 1
    assert sample("hotline_consumer_retries_total") == retries + 1
    assert classifier.retries == 1


async def test_the_lag_keeps_up_between_batches_and_leaves_with_the_partition(
    classifier: Classifier,
) -> None:
    """While a batch waits (or nothing arrives), the timer re-reads the highwater: a growing
    backlog shows. A partition a rebalance moved elsewhere stops being exported here, or its
    last value would stay in the lag sum next to the new owner's."""
    topic = classifier.settings.topics.inbound
    p1, p2 = TP(topic, 1), TP(topic, 2)
    consumer = FakeConsumer({p1: 1, p2: 1})
    classifier.app.consumer = consumer  # type: ignore[assignment]
    classifier.publisher = FlakyPublisher(failures=0)  # type: ignore[assignment]
    await classifier.process_batch([_event(topic, 1, 0, POISON), _event(topic, 2, 0, POISON)])
    assert (lag(1), lag(2)) == (0, 0)

    consumer.highwaters[p1] = 40  # messages arrive; no batch processed yet
    classifier.refresh_lag()
    assert lag(1) == 39

    consumer.assigned = {p1}  # p2 revoked
    classifier.refresh_lag()
    assert lag(2) is None
    assert lag(1) == 39
