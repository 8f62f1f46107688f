"""The shared consume-process-produce runner against the real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

import hotline.contracts.events as events
from hotline.contracts import DeadLetter, InboundEvent, TopicNames, decode
from hotline.kafka import Outgoing, Publisher, make_consumer, make_producer
from hotline.runner import Message, Poison, Runner, RunnerConfig, Transient
from hotline.testing.kafka import produce, read_topic

pytestmark = pytest.mark.integration

EXAMPLE = (Path(events.__file__).parent / "examples" / "InboundEvent.json").read_text()


def _inbound(text: str) -> bytes:
    data = json.loads(EXAMPLE)
    data["text"] = text
    return json.dumps(data).encode()


async def _run(
    bootstrap: str,
    topics: TopicNames,
    handler: object,
    until: int,
) -> Runner[InboundEvent]:
    producer = make_producer(bootstrap, "test-runner")
    await producer.start()
    consumer = make_consumer(bootstrap, "g-runner", [topics.inbound], client_id="test-runner")
    await consumer.start()
    runner: Runner[InboundEvent] = Runner(
        consumer,
        Publisher(producer, "test"),
        InboundEvent,
        handler,  # type: ignore[arg-type]
        RunnerConfig(
            service="test",
            topic=topics.inbound,
            deadletter_topic=topics.deadletter,
            backoff_initial_s=0.01,
        ),
    )
    task = asyncio.create_task(runner.run())
    try:
        for _ in range(200):
            if runner.stats.processed + runner.stats.deadlettered >= until:
                break
            await asyncio.sleep(0.05)
    finally:
        runner.stop()
        await task
        await consumer.stop()
        await producer.stop()
    return runner


async def test_malformed_messages_are_dead_lettered_and_the_partition_moves_on(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    async def handler(msg: Message[InboundEvent]) -> Sequence[Outgoing]:
        if msg.value.text == "poison":
            raise Poison("text says poison")
        return [Outgoing(topics.triaged, msg.value.text.encode(), key=msg.key)]

    values = [
        _inbound("first"),
        b"{not json",
        b"\xff\xfe binary",
        json.dumps({"event_id": "x", "channel": "pigeon"}).encode(),
        _inbound("poison"),
        _inbound("last"),
    ]
    await produce(kafka_bootstrap, topics.inbound, values, key=b"same-partition")
    runner = await _run(kafka_bootstrap, topics, handler, until=6)

    assert runner.stats.processed == 2
    assert runner.stats.deadlettered == 4
    out = await read_topic(kafka_bootstrap, topics.triaged, expect=2)
    assert [r.value for r in out] == [b"first", b"last"]
    dead = [
        decode(DeadLetter, r.value or b"")
        for r in await read_topic(kafka_bootstrap, topics.deadletter, expect=4)
    ]
    reasons = [(d.reason.value, d.offset) for d in dead]
    assert reasons == [("undecodable", 1), ("undecodable", 2), ("invalid", 3), ("invalid", 4)]
    assert dead[1].value_encoding == "base64"
    assert "channel" in dead[2].detail
    assert dead[3].detail == "text says poison"


async def test_transient_failures_are_retried_until_they_pass(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    calls = {"n": 0}

    async def flaky(msg: Message[InboundEvent]) -> Sequence[Outgoing]:
        calls["n"] += 1
        if calls["n"] <= 5:
            raise Transient("database unavailable")
        return [Outgoing(topics.triaged, b"ok")]

    await produce(kafka_bootstrap, topics.inbound, [_inbound("x")])
    runner = await _run(kafka_bootstrap, topics, flaky, until=1)
    assert runner.stats.processed == 1
    assert runner.stats.retries == 5
    assert runner.stats.deadlettered == 0


async def test_a_handler_that_always_fails_is_dead_lettered_after_max_attempts(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    async def broken(msg: Message[InboundEvent]) -> Sequence[Outgoing]:
        raise ValueError("bug in handler")

    await produce(kafka_bootstrap, topics.inbound, [_inbound("x")])
    runner = await _run(kafka_bootstrap, topics, broken, until=1)
    assert runner.stats.deadlettered == 1
    dead = await read_topic(kafka_bootstrap, topics.deadletter, expect=1)
    letter = decode(DeadLetter, dead[0].value or b"")
    assert letter.reason.value == "handler_error"
    assert letter.attempts == 3
    assert "bug in handler" in letter.detail


async def test_processed_offsets_are_committed_when_the_runner_goes_idle(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    """With a commit interval far longer than the test, the offsets of what was processed are
    still committed as soon as a poll comes back empty (nothing processed stays uncommitted
    while the runner waits), and nothing before its outputs were published."""

    async def handler(msg: Message[InboundEvent]) -> Sequence[Outgoing]:
        return [Outgoing(topics.triaged, msg.value.text.encode(), key=msg.key)]

    await produce(kafka_bootstrap, topics.inbound, [_inbound(f"m{i}") for i in range(5)])
    producer = make_producer(kafka_bootstrap, "test-runner")
    await producer.start()
    group = f"g-idle-{topics.inbound}"
    consumer = make_consumer(kafka_bootstrap, group, [topics.inbound], client_id="test-runner")
    await consumer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    config = RunnerConfig(
        service="test",
        topic=topics.inbound,
        deadletter_topic=topics.deadletter,
        poll_timeout_ms=100,
        commit_interval_s=3600,
    )
    runner: Runner[InboundEvent] = Runner(
        consumer, Publisher(producer, "test"), InboundEvent, handler, config
    )
    task = asyncio.create_task(runner.run())
    try:

        async def committed() -> int:
            offsets = await admin.list_consumer_group_offsets(group)
            return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topics.inbound)

        total = -1
        for _ in range(100):
            total = await committed()
            if total == 5:
                break
            await asyncio.sleep(0.1)
        assert total == 5, total
        assert runner.stats.processed == 5
        assert not task.done()  # committed while running, not by stopping
        out = await read_topic(kafka_bootstrap, topics.triaged, expect=5)
        assert sorted(r.value for r in out) == [f"m{i}".encode() for i in range(5)]
    finally:
        runner.stop()
        await task
        await admin.close()
        await consumer.stop()
        await producer.stop()
