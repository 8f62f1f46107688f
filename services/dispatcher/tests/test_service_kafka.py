"""The whole service on the real broker and database: triaged in, decisions and case events out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hotline.contracts.events import (
    Actor,
    CaseEvent,
    CaseEventType,
    DeadLetter,
    DeliveryOutcome,
    DeliveryPurpose,
    DeliveryStatus,
    DispatchAction,
    DispatchDecision,
    encode,
)
from hotline.contracts.topics import TopicNames
from hotline.mongo import MotorDatabase
from hotline.testing import skip_unless_required
from hotline.testing.kafka import produce, read_topic
from hotline_dispatcher.config import load_organisation
from hotline_dispatcher.main import Components, build
from hotline_dispatcher.testing import local, settings_for, triaged

pytestmark = pytest.mark.integration

FIRE = "Cháy nhà ở kiệt 5 đường Lê Lợi, có người kẹt bên trong"


@pytest.fixture
async def service(
    kafka_bootstrap: str,
    mongo_uri: str,
    mongo_db: MotorDatabase,
    topics: TopicNames,
    namespace: str,
) -> AsyncIterator[Components]:
    settings = settings_for(
        kafka=kafka_bootstrap, mongo_uri=mongo_uri, database=mongo_db.name, namespace=namespace
    )
    components = build(settings, load_organisation(), maintenance=False)
    async with components.app.router.lifespan_context(components.app):
        yield components


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


def decisions_of(records: list[object]) -> list[DispatchDecision]:
    return [DispatchDecision.model_validate_json(r.value or b"") for r in records]  # type: ignore[attr-defined]


async def test_reports_in_decisions_out_with_redelivery_and_dead_letters(
    service: Components, kafka_bootstrap: str, topics: TopicNames
) -> None:
    fire = triaged(FIRE, category="fire_rescue", user_id="c1")
    again = triaged(
        "chay nha kiet 5 le loi nguoi ket ben trong", category="fire_rescue", user_id="c2"
    )
    hello = triaged("Chào anh", category="greeting", priority="P4", location=None, user_id="c3")
    values = [
        encode(fire),
        encode(again),
        b'{"event_id": "x", "not": "a triaged event"}',
        encode(hello),
        encode(fire),
    ]  # the last is a redelivery of the first
    await produce(kafka_bootstrap, topics.triaged, values, key=b"one-partition")

    records = await read_topic(kafka_bootstrap, topics.dispatched, expect=4, timeout_s=30)
    decided = decisions_of(records)  # (partitions: order only holds per case)
    by_event: dict[str, list[bytes]] = {}
    for record, decision in zip(records, decided, strict=True):
        by_event.setdefault(decision.event_id, []).append(record.value or b"")
    assert len(by_event[fire.event_id]) == 2
    assert by_event[fire.event_id][0] == by_event[fire.event_id][1]  # re-published unchanged
    actions = {d.event_id: d for d in decided}
    assert actions[fire.event_id].action == DispatchAction.NEW_CASE
    assert actions[again.event_id].action == DispatchAction.MERGED
    assert actions[hello.event_id].action == DispatchAction.GREETING
    assert actions[again.event_id].case_id == actions[fire.event_id].case_id
    fire_record = next(
        r for r, d in zip(records, decided, strict=True) if d.event_id == fire.event_id
    )
    assert fire_record.key == (actions[fire.event_id].case_id or "").encode()
    assert await service.repo.count_cases({}) == 1

    dead = await read_topic(kafka_bootstrap, topics.deadletter, expect=1, timeout_s=10)
    letter = DeadLetter.model_validate_json(dead[0].value or b"")
    assert letter.service == "dispatcher" and letter.reason.value == "invalid"
    assert "channel: Field required" in letter.detail

    opened = await read_topic(kafka_bootstrap, topics.case_events, expect=3, timeout_s=10)
    types = [CaseEvent.model_validate_json(r.value or b"").type for r in opened]
    assert types[:2] == [CaseEventType.OPENED, CaseEventType.REPORT_ADDED]


async def test_acknowledgements_and_deliveries_from_the_notifier(
    service: Components, kafka_bootstrap: str, topics: TopicNames
) -> None:
    outs = await service.dispatcher.dispatch_many([triaged(FIRE, category="fire_rescue")])
    case_id = DispatchDecision.model_validate_json(outs[0].value).case_id
    assert case_id
    delivery = DeliveryOutcome(
        delivery_id="d-1",
        case_id=case_id,
        purpose=DeliveryPurpose.ALERT,
        level=0,
        recipient_id="hue-city-o2",
        recipient_role="officer",
        channel="zalo",
        address_masked="77***19",
        status=DeliveryStatus.SENT,
        attempts=1,
        at=local(2024, 1, 24, 8, 43),
    )
    ack = CaseEvent(
        event_id=str(uuid.uuid4()),
        case_id=case_id,
        type=CaseEventType.ACKNOWLEDGED,
        source="notifier",
        actor=Actor(id="hue-city-o2", role="officer"),
        at=local(2024, 1, 24, 8, 44),
        data={"via": "link", "level": 0},
    )
    await produce(kafka_bootstrap, topics.deliveries, [encode(delivery), encode(delivery)])
    await produce(kafka_bootstrap, topics.case_events, [encode(ack), encode(ack)])

    async def recorded() -> bool:
        case = await service.repo.get_case(case_id)
        kinds = [e["type"] for e in await service.repo.timeline(case_id)]
        return bool(case and case["state"] == "acknowledged" and "delivery" in kinds)

    await eventually(recorded)
    await asyncio.sleep(1.0)  # the duplicates too
    timeline = await service.repo.timeline(case_id)
    kinds = [e["type"] for e in timeline]
    assert kinds.count("delivery") == 1 and kinds.count("acknowledged") == 1
    entry = next(e for e in timeline if e["type"] == "acknowledged")
    assert entry["actor"]["id"] == "hue-city-o2" and entry["data"]["source"] == "notifier"


def _stack(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
async def test_the_database_stopped_and_restarted_mid_stream_loses_nothing(
    service: Components, kafka_bootstrap: str, topics: TopicNames, stack_script: Path
) -> None:
    status = _stack(stack_script, "status")
    if "ferretdb    running" not in status.stdout:
        skip_unless_required(
            "FerretDB is not managed by deploy/local/stack.py here (external database)"
        )
    places = [
        "Vỹ Dạ",
        "Kim Long",
        "An Cựu",
        "Phú Hội",
        "Tây Lộc",
        "Thủy Dương",
        "Lăng Cô",
        "Khe Tre",
        "A Roàng",
        "Sịa",
        "Tứ Hạ",
        "Phú Đa",
    ]
    events = [
        triaged(
            f"Trộm xe máy số {i} tại {place}",
            category="theft",
            priority="P3",
            location=None,
            user_id=f"citizen-{i}",
        )
        for i, place in enumerate(places * 2)
    ]
    first, rest = events[:6], events[6:]
    await produce(kafka_bootstrap, topics.triaged, [encode(e) for e in first])
    await read_topic(kafka_bootstrap, topics.dispatched, expect=len(first), timeout_s=30)

    stopped = _stack(stack_script, "stop", "ferretdb")
    try:
        assert stopped.returncode == 0, stopped.stderr
        await produce(kafka_bootstrap, topics.triaged, [encode(e) for e in rest[:9]])
        await asyncio.sleep(4)  # the consumer meets the outage and retries
        assert service.triaged_worker.runner.stats.retries > 0
    finally:
        started = _stack(stack_script, "start", "ferretdb")
        assert started.returncode == 0, started.stdout + started.stderr
    await produce(kafka_bootstrap, topics.triaged, [encode(e) for e in rest[9:]])

    wanted = {e.event_id for e in events}
    records = await read_topic(
        kafka_bootstrap,
        topics.dispatched,
        timeout_s=90,
        idle_s=1.0,
        until=lambda rs: (
            {DispatchDecision.model_validate_json(r.value or b"").event_id for r in rs} >= wanted
        ),
    )
    decided = decisions_of(records)
    assert {d.event_id for d in decided} == wanted
    by_event: dict[str, set[bytes]] = {}
    for r, d in zip(records, decided, strict=True):
        by_event.setdefault(d.event_id, set()).add(r.value or b"")
    assert all(len(v) == 1 for v in by_event.values())  # a repeat is the same decision
    case_ids = {d.case_id for d in decided}
    assert len(case_ids) == len(events)  # one case each, none lost, none doubled
    assert await service.repo.count_cases({}) == len(events)
