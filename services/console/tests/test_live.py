"""The live feed on the real broker: each replica its own group, from the latest offset."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import httpx
import pytest

from hotline.contracts.events import DeliveryOutcome, DeliveryPurpose, DeliveryStatus
from hotline.contracts.topics import TopicNames
from hotline.testing.kafka import produce
from hotline_console.app import build
from hotline_console.live import Broadcaster, LiveFeed, Signal, stream
from hotline_console.settings import ConsoleSettings

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


async def wait_ready(feed: LiveFeed) -> None:
    for _ in range(150):
        with contextlib.suppress(RuntimeError):
            await feed.ready()
            await asyncio.sleep(1.0)  # positions resolved to the end of the log
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the live feed never got its partitions")


async def test_a_delivery_outcome_refreshes_its_open_case_page_only(
    kafka_bootstrap: str, topics: TopicNames, namespace: str
) -> None:
    """The console as `build` wires it reads the deliveries topic: an outcome for a case
    pushes `case` to that case's open page (and again after the recheck, when the dispatcher
    has surely put it on the timeline), not to another case's page nor to the queue."""
    settings = ConsoleSettings(
        environment="test",
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_namespace=namespace,
        delivery_recheck_ms=300,
    )
    unused = httpx.MockTransport(lambda request: httpx.Response(503))
    console = build(
        settings,
        dispatcher_http=httpx.AsyncClient(transport=unused, base_url="http://dispatcher"),
        ingest_http=httpx.AsyncClient(transport=unused, base_url="http://ingest"),
    )
    outcome = DeliveryOutcome(
        delivery_id="alert:HUE-20240124-0042:0:hue-city-o1:zalo",
        case_id="HUE-20240124-0042",
        purpose=DeliveryPurpose.ALERT,
        level=0,
        recipient_id="hue-city-o1",
        recipient_role="officer",
        channel="zalo",
        address_masked="09******56",
        status=DeliveryStatus.SENT,
        attempts=1,
        at=datetime.now(UTC),
    )
    async with console.app.router.lifespan_context(console.app):
        assert console.console.live is not None
        await wait_ready(console.console.live)
        live = {"coalesce_s": 0.05, "heartbeat_s": 30, "recheck_s": 0.3}
        pages = {
            "case": stream(console.console.broadcaster, case_id=outcome.case_id, **live),
            "other": stream(console.console.broadcaster, case_id="HUE-20240124-0043", **live),
            "queue": stream(console.console.broadcaster, case_id=None, **live),
        }
        for body in pages.values():
            assert (await anext(body)).startswith(b"retry:")
        pushed = {name: asyncio.ensure_future(anext(body)) for name, body in pages.items()}
        await asyncio.sleep(0)
        await produce(
            kafka_bootstrap,
            topics.deliveries,
            [outcome.model_dump_json().encode()],
            key=outcome.case_id.encode() if outcome.case_id else None,
        )
        first = await asyncio.wait_for(pushed["case"], 10)
        assert first.startswith(b"event: case\n") and b'"delivery"' in first
        assert b"09******56" not in first and b"hue-city-o1" not in first  # a signal, no data
        again = await asyncio.wait_for(anext(pages["case"]), 5)
        assert again.startswith(b"event: case\n") and b'"recheck":true' in again
        await asyncio.sleep(0.3)
        assert not pushed["other"].done() and not pushed["queue"].done()
        for name in ("other", "queue"):
            pushed[name].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pushed[name]
        await pages["case"].aclose()
