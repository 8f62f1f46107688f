"""Produce and consume through a consumer group on the real broker; commits survive restarts."""

from __future__ import annotations

import pytest

from hotline.contracts.topics import TopicNames
from hotline.kafka import Outgoing, Publisher, make_consumer, make_producer

pytestmark = pytest.mark.integration


async def _drain(bootstrap: str, topic: str, group: str, want: int, polls: int = 60) -> list[bytes]:
    """Consume up to `want` records in one group session, committing what was processed."""
    consumer = make_consumer(bootstrap, group, [topic], client_id="test")
    await consumer.start()
    got: list[bytes] = []
    try:
        for _ in range(polls):
            batch = await consumer.getmany(timeout_ms=250, max_records=want - len(got))
            for tp, records in batch.items():
                got.extend(r.value for r in records if r.value is not None)
                await consumer.commit({tp: records[-1].offset + 1})
            if len(got) >= want:
                break
    finally:
        await consumer.stop()
    return got


async def test_round_trip_resumes_after_restart_without_redelivery(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    producer = make_producer(kafka_bootstrap, "test")
    await producer.start()
    publisher = Publisher(producer, "test")
    try:
        await publisher.publish_many(
            [Outgoing(topics.inbound, f"m{i}".encode(), key=f"k{i % 3}") for i in range(10)]
        )
        first = await _drain(kafka_bootstrap, topics.inbound, "g-roundtrip", 10)
        assert sorted(first) == sorted(f"m{i}".encode() for i in range(10))

        await publisher.publish_many([Outgoing(topics.inbound, b"after-restart", key="k1")])
        # A new consumer in the same group (a restarted service) sees only the new record.
        second = await _drain(kafka_bootstrap, topics.inbound, "g-roundtrip", 1)
        assert second == [b"after-restart"]
        nothing_more = await _drain(kafka_bootstrap, topics.inbound, "g-roundtrip", 1, polls=8)
        assert nothing_more == []
    finally:
        await producer.stop()


async def test_same_key_keeps_order(kafka_bootstrap: str, topics: TopicNames) -> None:
    producer = make_producer(kafka_bootstrap, "test")
    await producer.start()
    try:
        await Publisher(producer, "test").publish_many(
            [Outgoing(topics.inbound, str(i).encode(), key="zalo:citizen-1") for i in range(50)]
        )
    finally:
        await producer.stop()
    got = await _drain(kafka_bootstrap, topics.inbound, "g-order", 50)
    assert [int(v) for v in got] == list(range(50))
