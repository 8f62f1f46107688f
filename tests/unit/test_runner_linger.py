"""A poll-at-a-time runner's linger (RunnerConfig.linger_ms): a partial poll is topped up.

The consumer here is a scripted stand-in for the poll sequence only; the consume/produce/commit
path itself is covered against the real broker in tests/integration/test_runner.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from hotline.contracts import InboundEvent
from hotline.runner import Runner, RunnerConfig
from hotline.testing.kafka import consumer_record

TP0 = TopicPartition("in", 0)
TP1 = TopicPartition("in", 1)


def _rec(tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return consumer_record(tp.topic, tp.partition, offset, b"k", b"{}")


class ScriptedConsumer:
    """Answers each getmany with the next scripted poll, then stops the runner."""

    def __init__(self, polls: list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]):
        self.polls = polls
        self.calls: list[dict[str, Any]] = []
        self.runner: Runner[InboundEvent] | None = None

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        self.calls.append({"timeout_ms": timeout_ms, "max_records": max_records})
        if not self.polls:
            assert self.runner is not None
            self.runner.stop()
            return {}
        return self.polls.pop(0)


async def _run(
    polls: list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]],
    linger_ms: int,
    batch_size: int = 500,
) -> tuple[ScriptedConsumer, list[dict[TopicPartition, list[int]]]]:
    consumer = ScriptedConsumer(polls)
    config = RunnerConfig(
        service="test",
        topic="in",
        deadletter_topic="dlq",
        batch_size=batch_size,
        linger_ms=linger_ms,
    )
    runner: Runner[InboundEvent] = Runner(
        consumer,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        InboundEvent,
        None,  # type: ignore[arg-type]
        config,
    )
    consumer.runner = runner
    processed: list[dict[TopicPartition, list[int]]] = []

    async def process_batches(batches: dict[TopicPartition, list[Any]]) -> None:
        processed.append({tp: [r.offset for r in records] for tp, records in batches.items()})

    async def commit_pending() -> None:
        return None

    runner.process_batches = process_batches  # type: ignore[method-assign]
    runner.commit_pending = commit_pending  # type: ignore[method-assign]
    await asyncio.wait_for(runner.run(), 5)
    return consumer, processed


async def test_a_partial_poll_is_topped_up_in_offset_order() -> None:
    polls = [{TP0: [_rec(TP0, 7)]}, {TP0: [_rec(TP0, 8), _rec(TP0, 9)], TP1: [_rec(TP1, 3)]}]
    consumer, processed = await _run(polls, linger_ms=10)

    # One batch holds both polls, each partition's records in offset order.
    assert processed == [{TP0: [7, 8, 9], TP1: [3]}]
    # The top-up does not wait on the broker and asks only for the room left in the batch.
    assert consumer.calls[1] == {"timeout_ms": 0, "max_records": 499}


async def test_the_linger_waits_before_topping_up() -> None:
    polls = [{TP0: [_rec(TP0, 0)]}, {}]
    started = asyncio.get_running_loop().time()
    await _run(polls, linger_ms=60)
    assert asyncio.get_running_loop().time() - started >= 0.06


async def test_a_full_poll_does_not_linger() -> None:
    polls = [{TP0: [_rec(TP0, 0), _rec(TP0, 1)]}, {TP0: [_rec(TP0, 2)]}]
    consumer, processed = await _run(polls, linger_ms=10, batch_size=2)
    assert processed == [{TP0: [0, 1]}, {TP0: [2]}]
    # The full batch went straight on: the call after it is the next long poll, not a top-up.
    assert consumer.calls[1]["timeout_ms"] == RunnerConfig.poll_timeout_ms


async def test_without_linger_each_poll_is_its_own_batch() -> None:
    polls = [{TP0: [_rec(TP0, 0)]}, {TP0: [_rec(TP0, 1)]}]
    consumer, processed = await _run(polls, linger_ms=0)
    assert processed == [{TP0: [0]}, {TP0: [1]}]
    assert all(call["timeout_ms"] != 0 for call in consumer.calls)
