"""The pipelined runner (key_concurrency > 1): it polls again while records are in flight.

A scripted consumer hands out polls as the broker would; the consume/produce/commit path against
the real broker is covered in tests/integration/test_runner.py and by the notifier's tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from hotline.contracts import InboundEvent, example
from hotline.kafka import Outgoing
from hotline.runner import Message, Runner, RunnerConfig
from hotline.testing.kafka import consumer_record

EXAMPLE = example("InboundEvent")
TP0, TP1 = TopicPartition("in", 0), TopicPartition("in", 1)


def record(tp: TopicPartition, offset: int, key: bytes) -> ConsumerRecord[bytes, bytes]:
    value = dict(EXAMPLE, text=f"{key.decode()}#{tp.partition}.{offset}")
    return consumer_record(tp.topic, tp.partition, offset, key, json.dumps(value).encode())


class ScriptedConsumer:
    """Hands out the scripted polls one by one, then empty polls; records commits."""

    def __init__(self, polls: list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]):
        self.polls = list(polls)
        self.commits: list[dict[TopicPartition, int]] = []
        self.asked: list[int] = []

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        self.asked.append(max_records or 0)
        if self.polls:
            await asyncio.sleep(0)
            return self.polls.pop(0)
        await asyncio.sleep(0.005)
        return {}

    def highwater(self, tp: TopicPartition) -> int:
        return 100

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


class Published:
    def __init__(self) -> None:
        self.values: list[str] = []

    async def publish_many(self, outputs: Sequence[Outgoing]) -> None:
        self.values.extend(o.value.decode() for o in outputs)


class Handler:
    """Takes `slow_s` for the texts in `slow`, a moment for the others; can be held."""

    def __init__(self, slow: frozenset[str] = frozenset(), slow_s: float = 0.3) -> None:
        self.slow, self.slow_s = slow, slow_s
        self.finished: list[str] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, msg: Message[InboundEvent]) -> Sequence[Outgoing]:
        text = msg.value.text or ""
        await asyncio.sleep(self.slow_s if text in self.slow else 0.001)
        if text.startswith("held"):
            await self.release.wait()
        self.finished.append(text)
        return [Outgoing("out", text.encode(), key=msg.key)]


def pipelined(consumer: Any, handler: Any, published: Any, **config: Any) -> Runner[InboundEvent]:
    return Runner(
        consumer,
        published,
        InboundEvent,
        handler,
        RunnerConfig(
            service="test",
            topic="in",
            deadletter_topic="dlq",
            key_concurrency=8,
            commit_interval_s=0,
            **config,
        ),
    )


async def until(done: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not done():
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(runner: Runner[InboundEvent], handler: Handler) -> AsyncIterator[None]:
    """The runner's loop in the background; on the way out every held record is let go, so
    the runner can finish what it holds and stop."""
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        handler.release.set()
        runner.stop()
        await task


async def test_a_slow_record_delays_only_its_own_key() -> None:
    """a#0.0 is slow: b#0.1 (same poll) and c#0.2 (the next poll) finish long before it, and
    a#0.3 (same key) after it; a poll-at-a-time runner would hold c until a#0.0 finished."""
    consumer = ScriptedConsumer(
        [
            {TP0: [record(TP0, 0, b"a"), record(TP0, 1, b"b")]},
            {TP0: [record(TP0, 2, b"c"), record(TP0, 3, b"a")]},
        ]
    )
    handler, published = Handler(slow=frozenset({"a#0.0"})), Published()
    runner = pipelined(consumer, handler, published)
    async with running(runner, handler):
        await until(lambda: len(handler.finished) == 4)
    assert handler.finished.index("c#0.2") < handler.finished.index("a#0.0")
    assert handler.finished.index("a#0.0") < handler.finished.index("a#0.3")
    assert [v for v in published.values if v.startswith("a#")] == ["a#0.0", "a#0.3"]
    assert consumer.commits[-1] == {TP0: 4}


async def test_offsets_never_pass_an_unfinished_record() -> None:
    consumer = ScriptedConsumer(
        [{TP0: [record(TP0, 0, b"held"), record(TP0, 1, b"b"), record(TP0, 2, b"c")]}]
    )
    handler, published = Handler(), Published()
    handler.release.clear()
    runner = pipelined(consumer, handler, published)
    async with running(runner, handler):
        await until(lambda: len(handler.finished) >= 2)
        await runner.commit_pending()
        # b and c are done, the record before them is not: nothing may be committed yet.
        assert all(TP0 not in commit for commit in consumer.commits)
        assert runner.in_flight == 3  # finished records stay queued behind the held one
        handler.release.set()
        await until(lambda: not runner.in_flight)
        await runner.commit_pending()
        assert consumer.commits[-1] == {TP0: 3}


async def test_in_flight_records_are_bounded_by_the_batch_size() -> None:
    polls = [{TP0: [record(TP0, i, f"held{i}".encode())]} for i in range(6)]
    consumer = ScriptedConsumer(polls)
    handler, published = Handler(), Published()
    handler.release.clear()
    runner = pipelined(consumer, handler, published, batch_size=4)
    async with running(runner, handler):
        await asyncio.sleep(0.2)
        assert runner.in_flight == 4
        assert all(asked <= 4 for asked in consumer.asked)
        handler.release.set()
        await until(lambda: len(handler.finished) >= 6)
    assert consumer.commits[-1] == {TP0: 6}


async def test_a_revoked_partition_is_finished_and_committed_before_it_goes() -> None:
    consumer = ScriptedConsumer([{TP0: [record(TP0, 0, b"held")], TP1: [record(TP1, 0, b"x")]}])
    handler, published = Handler(), Published()
    handler.release.clear()
    runner = pipelined(consumer, handler, published)
    async with running(runner, handler):
        await until(lambda: "x#1.0" in handler.finished)
        revoking = asyncio.create_task(runner.on_revoked([TP0]))
        await asyncio.sleep(0.05)
        assert not revoking.done()  # waits for the record it still runs of that partition
        handler.release.set()
        await asyncio.wait_for(revoking, 5)
        assert "held#0.0" in handler.finished
        assert consumer.commits[-1][TP0] == 1
        assert TP0 not in runner._in_flight  # nothing of it is kept


async def test_a_failure_of_the_runner_itself_ends_run() -> None:
    """As in the poll-at-a-time runner, an error outside the handler's own (a publish that
    raises something unexpected) stops `run`, so the supervisor restarts the process."""

    class Broken(Published):
        async def publish_many(self, outputs: Sequence[Outgoing]) -> None:
            raise RuntimeError("producer state corrupted")

    consumer = ScriptedConsumer([{TP0: [record(TP0, 0, b"a")]}])
    runner = pipelined(consumer, Handler(), Broken())
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(5):
            while not task.done():
                await asyncio.sleep(0.01)
    finally:
        runner.stop()
    assert isinstance(task.exception(), RuntimeError)
    assert all(TP0 not in commit for commit in consumer.commits)
