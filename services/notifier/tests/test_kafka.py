"""Through the real broker: decisions and case events consumed by the notifier's runners."""

from __future__ import annotations

import asyncio
import json

import pytest

from hotline.clock import ManualClock
from hotline.contracts import example
from hotline.contracts.events import DeliveryOutcome, encode
from hotline.contracts.topics import TopicNames
from hotline.testing.kafka import produce, read_topic
from hotline_sandbox.server import SandboxHandle

from .conftest import NotifierFactory, consuming, decision

pytestmark = pytest.mark.integration


async def test_dispatched_to_provider_to_deliveries_topic_and_ops_ack_via_case_events(
    make_notifier: NotifierFactory,
    sandbox: SandboxHandle,
    clock: ManualClock,
    topics: TopicNames,
    kafka_bootstrap: str,
) -> None:
    n = await make_notifier()
    d = decision()
    assert d.case_id is not None
    async with consuming(n):
        await produce(kafka_bootstrap, topics.dispatched, [encode(d)], key=d.case_id.encode())
        found = await sandbox.sandbox.store.wait_for(3, timeout_s=20)
        assert len(found) == 3
        deliveries = await read_topic(kafka_bootstrap, topics.deliveries, expect=3)
        got = [DeliveryOutcome.model_validate_json(r.value or b"") for r in deliveries]
        assert {o.purpose.value for o in got} == {"alert", "inform", "citizen_receipt"}
        assert all(r.key == b"HUE-20240124-0042" for r in deliveries)
        # The ops API acknowledged (the dispatcher publishes it): escalation stops.
        ack = example("CaseEvent")
        ack.update(source="dispatcher", data={"via": "ops_api"})
        await produce(kafka_bootstrap, topics.case_events, [json.dumps(ack).encode()])
        for _ in range(200):
            if await n.repo.get_claim("ack:HUE-20240124-0042:0"):
                break
            await asyncio.sleep(0.05)
        clock.advance(600)
        assert (await n.engine.tick()).escalated == 0
    assert len(sandbox.sandbox.store.messages()) == 3


async def test_a_restarted_notifier_redelivered_the_same_decision_sends_once(
    make_notifier: NotifierFactory,
    sandbox: SandboxHandle,
    topics: TopicNames,
    kafka_bootstrap: str,
) -> None:
    d = decision()
    first = await make_notifier()
    async with consuming(first) as n:
        await produce(kafka_bootstrap, topics.dispatched, [encode(d)], key=b"HUE-20240124-0042")
        assert len(await sandbox.sandbox.store.wait_for(3, timeout_s=20)) == 3
    # The "restarted" process reads the topic again from the start (new group: every offset is
    # redelivered), and the dispatcher re-published the same decision meanwhile.
    await produce(kafka_bootstrap, topics.dispatched, [encode(d)], key=b"HUE-20240124-0042")
    second = await make_notifier(consumer_group=f"{first.settings.consumer_group}-restarted")
    async with consuming(second):
        deliveries = await read_topic(kafka_bootstrap, topics.deliveries, expect=9, timeout_s=20)
    assert n is first
    assert len(sandbox.sandbox.store.messages()) == 3  # nothing sent twice
    ids = [DeliveryOutcome.model_validate_json(r.value or b"").delivery_id for r in deliveries]
    assert len(ids) == 9 and len(set(ids)) == 3  # the same three outcomes, republished


async def test_a_malformed_decision_is_dead_lettered_and_the_next_one_is_served(
    make_notifier: NotifierFactory,
    sandbox: SandboxHandle,
    topics: TopicNames,
    kafka_bootstrap: str,
) -> None:
    n = await make_notifier()
    d = decision(informed=[], citizen_reply="none")
    async with consuming(n):
        await produce(
            kafka_bootstrap,
            topics.dispatched,
            [b'{"decision_id": "broken"}', encode(d)],
            key=b"HUE-20240124-0042",
        )
        assert len(await sandbox.sandbox.store.wait_for(1, timeout_s=20)) == 1
        letters = await read_topic(kafka_bootstrap, topics.deadletter, expect=1)
    assert json.loads(letters[0].value or b"{}")["reason"] == "invalid"
