"""Produce and consume through a consumer group on the real broker; commits survive restarts;
a producer whose idempotence state the broker refuses is replaced."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from hotline.contracts.topics import TopicNames
from hotline.kafka import Outgoing, Publisher, PublishError, make_consumer, make_producer

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


@contextlib.asynccontextmanager
async def _publisher(
    bootstrap: str, client_id: str, renew: Callable[[], AIOKafkaProducer] | None = None
) -> AsyncIterator[Publisher]:
    """A started publisher (its first producer on `bootstrap`), stopped on the way out."""
    producer = make_producer(bootstrap, client_id)
    await producer.start()
    publisher = Publisher(producer, "test", renew=renew)
    try:
        yield publisher
    finally:
        await publisher.stop()


async def test_round_trip_resumes_after_restart_without_redelivery(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    async with _publisher(kafka_bootstrap, "test") as publisher:
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


async def test_same_key_keeps_order(kafka_bootstrap: str, topics: TopicNames) -> None:
    async with _publisher(kafka_bootstrap, "test") as publisher:
        await publisher.publish_many(
            [Outgoing(topics.inbound, str(i).encode(), key="zalo:citizen-1") for i in range(50)]
        )
    got = await _drain(kafka_bootstrap, topics.inbound, "g-order", 50)
    assert [int(v) for v in got] == list(range(50))


async def _break_sequences(producer: AIOKafkaProducer, topic: str) -> None:
    """Leave a gap in the producer's sequence numbers, as aiokafka does when it fails a batch
    that already took one (a partition without a leader for longer than request_timeout_ms)."""
    for partition in await producer.partitions_for(topic):
        producer._txn_manager.increment_sequence_number(TopicPartition(topic, partition), 5)


async def test_a_producer_the_broker_refuses_is_replaced_and_nothing_is_lost_or_doubled(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    def new_producer() -> AIOKafkaProducer:
        return make_producer(kafka_bootstrap, "test-renew")

    async with _publisher(kafka_bootstrap, "test-renew", renew=new_producer) as publisher:
        first = publisher.producer
        await publisher.publish_many(
            [Outgoing(topics.inbound, f"before{i}".encode(), key=f"k{i}") for i in range(6)]
        )
        await _break_sequences(first, topics.inbound)
        # Concurrent publishes all see the refusal; the producer is replaced once.
        await asyncio.gather(
            *(
                publisher.publish(Outgoing(topics.inbound, f"after{i}".encode(), key=f"k{i}"))
                for i in range(6)
            )
        )
        assert publisher.renewals == 1
        assert publisher.producer is not first
        await publisher.publish(Outgoing(topics.inbound, b"later", key="k0"))
        assert publisher.renewals == 1
    got = await _drain(kafka_bootstrap, topics.inbound, "g-renew", 13)
    assert sorted(got) == sorted(
        [f"before{i}".encode() for i in range(6)]
        + [f"after{i}".encode() for i in range(6)]
        + [b"later"]
    )
    assert await _drain(kafka_bootstrap, topics.inbound, "g-renew", 1, polls=8) == []


async def test_without_a_way_to_renew_the_refused_producer_fails_the_publish(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    """What the renewal protects against: the refusal is real and lasts."""
    async with _publisher(kafka_bootstrap, "test-no-renew") as publisher:
        await publisher.publish(Outgoing(topics.inbound, b"one", key="k"))
        await _break_sequences(publisher.producer, topics.inbound)
        for _ in range(2):
            with pytest.raises(PublishError, match="OutOfOrderSequenceNumber"):
                await publisher.publish(Outgoing(topics.inbound, b"two", key="k"))


async def test_a_replacement_that_cannot_start_fails_the_publish_and_is_tried_again(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    bootstrap = ["127.0.0.1:1"]  # the replacement's broker is unreachable at first

    def new_producer() -> AIOKafkaProducer:
        return make_producer(bootstrap[0], "test-renew-later")

    async with _publisher(kafka_bootstrap, "test-renew-later", renew=new_producer) as publisher:
        first = publisher.producer
        await publisher.publish(Outgoing(topics.inbound, b"one", key="k"))
        await _break_sequences(first, topics.inbound)
        with pytest.raises(PublishError):
            await publisher.publish(Outgoing(topics.inbound, b"two", key="k"))
        assert publisher.producer is first and publisher.renewals == 0
        bootstrap[0] = kafka_bootstrap
        await publisher.publish(Outgoing(topics.inbound, b"two", key="k"))
        assert publisher.producer is not first and publisher.renewals == 1
    got = await _drain(kafka_bootstrap, topics.inbound, "g-renew-later", 2)
    assert got == [b"one", b"two"]
