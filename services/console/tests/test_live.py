"""The live feed on the real broker: each replica its own group, from the latest offset."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from hotline.contracts.topics import TopicNames
from hotline.testing.kafka import produce
from hotline_console.live import Broadcaster, LiveFeed, Signal

pytestmark = pytest.mark.integration


async def test_every_replica_gets_every_change_from_the_latest_offset(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    old = b'{"type": "note_added", "case_id": "HUE-20240124-0001", "priority": "P3"}'
    await produce(kafka_bootstrap, topics.case_events, [old], key=b"HUE-20240124-0001")
    names = [(topics.dispatched, "dispatched"), (topics.case_events, "case-events")]
    replicas = [Broadcaster(), Broadcaster()]
    feeds = [LiveFeed(kafka_bootstrap, names, "console-test", b) for b in replicas]
    assert feeds[0].group_id != feeds[1].group_id
    queues = [b.subscribe() for b in replicas]
    received = [q.__enter__() for q in queues]
    tasks = [asyncio.create_task(f.run()) for f in feeds]
    try:
        for feed in feeds:
            for _ in range(150):
                with contextlib.suppress(RuntimeError):
                    await feed.ready()
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the live feed never got its partitions")
        await asyncio.sleep(1.0)  # positions resolved to the end of the log
        new = b'{"action": "new_case", "case_id": "HUE-20240124-0002", "priority": "P1"}'
        await produce(kafka_bootstrap, topics.dispatched, [new, b"poison"], key=b"k")
        for queue in received:
            signal = await asyncio.wait_for(queue.get(), 10)
            assert signal == Signal("dispatched", "new_case", "HUE-20240124-0002", "P1")
            await asyncio.sleep(0.3)
            assert queue.empty()  # not the old event, not the poison
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for q in queues:
            q.__exit__(None, None, None)
