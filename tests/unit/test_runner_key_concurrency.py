"""Per-key concurrency inside one partition (RunnerConfig.key_concurrency).

The ordering logic needs no broker: records are built by hand and handed to the runner's
partition step, as a poll would hand them. The consume/produce/commit path around it is covered
against the real broker in tests/integration/test_runner.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from hotline.contracts import InboundEvent, example
from hotline.kafka import Outgoing
from hotline.runner import Message, Runner, RunnerConfig
from hotline.testing.kafka import consumer_record

EXAMPLE = example("InboundEvent")


def _records(keys: list[bytes]) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        consumer_record(
            "in",
            0,
            offset,
            key,
            json.dumps(dict(EXAMPLE, text=f"{key.decode()}#{offset}")).encode(),
        )
        for offset, key in enumerate(keys)
    ]


class Recorder:
    def __init__(self, slow_key: str) -> None:
        self.slow_key = slow_key
        self.in_flight = 0
        self.max_in_flight = 0
        self.started: list[str] = []
        self.log: list[tuple[str, str]] = []

    async def __call__(self, msg: Message[InboundEvent]) -> Sequence[Outgoing]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.started.append(msg.value.text)
        self.log.append(("start", msg.value.text))
        # The slow key's messages take longest: in strict order they would hold up the rest.
        await asyncio.sleep(0.03 if msg.key == self.slow_key else 0.005)
        self.in_flight -= 1
        self.log.append(("end", msg.value.text))
        return [Outgoing("out", msg.value.text.encode(), key=msg.key)]


def _runner(handler: Any, key_concurrency: int) -> Runner[InboundEvent]:
    config = RunnerConfig(
        service="test", topic="in", deadletter_topic="dlq", key_concurrency=key_concurrency
    )
    return Runner(None, None, InboundEvent, handler, config)  # type: ignore[arg-type]


KEYS = [b"a", b"b", b"a", b"c", b"b", b"a", b"d", b"c", b"e", b"a"]


def _per_key(texts: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for text in texts:
        grouped.setdefault(text.split("#")[0], []).append(text)
    return grouped


async def test_strict_order_by_default() -> None:
    recorder = Recorder(slow_key="a")
    outs = await _runner(recorder, 1)._process_partition(_records(KEYS))
    assert recorder.max_in_flight == 1
    assert [o.value.decode() for o in outs] == [f"{k.decode()}#{i}" for i, k in enumerate(KEYS)]


@pytest.mark.parametrize("limit", [2, 3, 64])
async def test_different_keys_run_concurrently_and_each_key_keeps_its_order(limit: int) -> None:
    recorder = Recorder(slow_key="a")
    outs = await _runner(recorder, limit)._process_partition(_records(KEYS))

    distinct = len(set(KEYS))
    assert recorder.max_in_flight == min(limit, distinct)
    texts = [o.value.decode() for o in outs]
    assert sorted(texts) == sorted(f"{k.decode()}#{i}" for i, k in enumerate(KEYS))
    expected = _per_key([f"{k.decode()}#{i}" for i, k in enumerate(KEYS)])
    # Every key's messages were started, and their outputs emitted, in offset order.
    assert _per_key(recorder.started) == expected
    assert _per_key(texts) == expected
    assert all(o.key == t.split("#")[0] for o, t in zip(outs, texts, strict=True))
    # ...and never two of the same key at once: each start follows the previous one's end.
    for key in {k.decode() for k in KEYS}:
        steps = [step for step, text in recorder.log if text.startswith(f"{key}#")]
        assert steps == ["start", "end"] * (len(steps) // 2), key
