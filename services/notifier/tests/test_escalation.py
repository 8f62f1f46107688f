"""Escalation on the real broker and database, timed by a ManualClock, providers in the sandbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline.clock import ManualClock
from hotline.contracts import events, example
from hotline.contracts.events import CaseEvent, DeliveryStatus, DispatchAction
from hotline.contracts.topics import TopicNames
from hotline.kafka import Outgoing, Publisher, PublishError
from hotline.testing.kafka import read_topic
from hotline_notifier.escalation import SWEEP_SPACING
from hotline_notifier.metrics import ACK_REJECTED
from hotline_notifier.metrics import UNACKNOWLEDGED as UNACKNOWLEDGED_ALERTS
from hotline_notifier.models import AlertStatus
from hotline_sandbox.server import SandboxHandle

from .conftest import (
    MORNING,
    NotifierFactory,
    ack_client,
    decision,
    outcomes,
    token_from,
)

pytestmark = pytest.mark.integration


def sent_to(sb: SandboxHandle) -> list[tuple[str, str]]:
    return [(m.provider, m.to) for m in sb.sandbox.store.messages()]


async def test_new_case_alerts_level_0_informs_the_director_and_answers_the_citizen(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier()
    outs = await n.handlers.handle_decision(decision())
    assert sorted(sent_to(sandbox)) == [
        ("twilio", "+84919697575"),  # the Director, informed of every P1
        ("zalo", "7700112233445566"),  # the officer, first preference
        ("zalo", "8800112233445566"),  # the citizen's receipt, on Zalo
    ]
    got = outcomes(outs)
    assert {(o.purpose.value, o.status.value) for o in got} == {
        ("alert", "sent"),
        ("inform", "sent"),
        ("citizen_receipt", "sent"),
    }
    alert = next(o for o in got if o.purpose.value == "alert")
    assert alert.first_alert and alert.level == 0 and alert.address_masked == "770***********66"
    officer = sandbox.sandbox.store.messages(to="7700112233445566")[0].text
    assert "HUE-20240124-0042" in officer and "KHẨN CẤP" in officer
    assert (
        "tại chợ Đông Ba, thành phố Huế" in officer
    )  # the place the report names, then its district
    assert "8800112233445566" not in officer  # the officer may not see the reporter's contact
    director = sandbox.sandbox.store.messages(to="+84919697575")[0].text
    assert "8800112233445566" in director  # the Director may
    assert "/ack/" not in director  # informed, not asked to acknowledge
    receipt = sandbox.sandbox.store.messages(to="8800112233445566")[0].text
    assert "rất vui lòng nhận tin phản ánh của anh, chị" in receipt


async def test_escalation_follows_the_chain_on_the_clock(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier(top_level_repeats=1)
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    assert len(sandbox.sandbox.store.messages()) == 1
    clock.advance(119)
    assert (await n.engine.tick()).escalated == 0
    clock.advance(1)
    report = await n.engine.tick()
    assert report.escalated == 1
    assert sent_to(sandbox)[-1] == ("twilio", "+84905111000")  # commander
    commander = sandbox.sandbox.store.messages(to="+84905111000")[0].text
    assert "Chuyển cấp" in commander and "2 phút" in commander
    assert "8800112233445566" in commander  # commanders may see the reporter
    clock.advance(120)
    await n.engine.tick()
    assert sent_to(sandbox)[-1] == ("telegram", "123456789")  # Staff Office duty leader
    clock.advance(120)
    await n.engine.tick()
    assert sent_to(sandbox)[-1] == ("twilio", "+84919697575")  # the Director
    clock.advance(120)
    await n.engine.tick()  # nobody answered: the Director is alerted once more
    assert sent_to(sandbox).count(("twilio", "+84919697575")) == 2
    clock.advance(600)
    await n.engine.tick()
    state = await n.repo.get_alert("HUE-20240124-0042")
    assert state is not None and state.status == AlertStatus.EXHAUSTED
    clock.advance(3600)
    await n.engine.tick()
    assert len(sandbox.sandbox.store.messages()) == 5


async def test_escalated_case_events_and_deliveries_reach_the_broker(
    make_notifier: NotifierFactory,
    sandbox: SandboxHandle,
    clock: ManualClock,
    topics: TopicNames,
    kafka_bootstrap: str,
) -> None:
    n = await make_notifier()
    outs = await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    await n.publisher.publish_many(outs)
    clock.advance(120)
    await n.engine.tick()
    records = await read_topic(kafka_bootstrap, topics.case_events, expect=1)
    [event] = [CaseEvent.model_validate_json(r.value or b"") for r in records]
    assert event.type.value == "escalated" and event.source == "notifier"
    assert event.data["level"] == 1 and event.data["from_level"] == 0
    assert [r.person_id for r in event.recipients] == ["hue-city-cmd"]
    deliveries = await read_topic(kafka_bootstrap, topics.deliveries, expect=2)
    levels = sorted(
        (r.key or b"").decode() + f":{__import__('json').loads(r.value or b'{}')['level']}"
        for r in deliveries
    )
    assert levels == ["HUE-20240124-0042:0", "HUE-20240124-0042:1"]


async def test_ack_link_stops_escalation_and_publishes_the_acknowledgement(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier(reminder_interval_s=1800)
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    token = token_from(sandbox.sandbox.store.messages()[0].text)
    async with ack_client(n) as client:
        page = await client.get(f"/ack/{token}")
        assert page.status_code == 200 and "<form method='post'>" in page.text
        clock.advance(60)
        # The confirm page alone (a link preview) acknowledges nothing.
        assert (await n.repo.get_claim("ack:HUE-20240124-0042:0")) is None
        done = await client.post(
            f"/ack/{token}",
            data={"recipient": "hue-city-o1"},
            headers={"Accept": "application/json"},
        )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "case_id": "HUE-20240124-0042",
        "acknowledged_by": "hue-city-o1",
        "first": True,
    }
    clock.advance(600)
    await n.engine.tick()
    assert len(sandbox.sandbox.store.messages()) == 1  # no escalation
    state = await n.repo.get_alert("HUE-20240124-0042")
    assert state is not None and state.status == AlertStatus.ACKNOWLEDGED
    assert state.acked_by == "hue-city-o1"
    # Acknowledged but not resolved: a reminder at the configured interval, to the acker.
    clock.advance(1800 - 600 + 1)
    assert (await n.engine.tick()).reminded == 1
    reminder = sandbox.sandbox.store.messages()[-1]
    assert reminder.to == "7700112233445566" and "Nhắc việc" in reminder.text


async def test_ack_link_event_is_published_as_case_event(
    make_notifier: NotifierFactory,
    sandbox: SandboxHandle,
    topics: TopicNames,
    kafka_bootstrap: str,
) -> None:
    n = await make_notifier()
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    token = token_from(sandbox.sandbox.store.messages()[0].text)
    async with ack_client(n) as client:
        assert (await client.post(f"/ack/{token}")).status_code == 200
    records = await read_topic(kafka_bootstrap, topics.case_events, expect=1)
    [event] = [CaseEvent.model_validate_json(r.value or b"") for r in records]
    assert (event.type.value, event.source, event.actor.id) == (
        "acknowledged",
        "notifier",
        "hue-city-o1",
    )
    assert event.data == {"via": "link", "level": 0}


async def test_forged_expired_replayed_and_wrong_recipient_tokens_are_refused(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier(ack_token_ttl_s=3600)
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    token = token_from(sandbox.sandbox.store.messages()[0].text)
    before = {
        r: ACK_REJECTED.labels(r)._value.get()
        for r in ("forged", "expired", "replayed", "wrong_recipient")
    }
    json_accept = {"Accept": "application/json"}
    async with ack_client(n) as client:
        payload, mac = token.split(".")
        forged = await client.post(f"/ack/{payload}.{mac[:-2]}AA", headers=json_accept)
        assert forged.status_code == 401 and forged.json()["error"] == "forged"
        assert (await client.get("/ack/not-a-token")).status_code == 401
        wrong = await client.post(
            f"/ack/{token}", data={"recipient": "director"}, headers=json_accept
        )
        assert wrong.status_code == 403 and wrong.json()["error"] == "wrong_recipient"
        # A correctly signed token for somebody who was never alerted for this case.
        outsider = n.links.tokens.issue(
            case_id="HUE-20240124-0042", cycle=0, level=0, recipient_id="director", now=clock.now()
        )
        assert (await client.post(f"/ack/{outsider}", headers=json_accept)).status_code == 403
        assert (await client.post(f"/ack/{token}", headers=json_accept)).status_code == 200
        replayed = await client.post(f"/ack/{token}", headers=json_accept)
        assert replayed.status_code == 410 and replayed.json()["error"] == "replayed"
        clock.advance(120)
        await n.engine.tick()  # acknowledged: no escalation, no new token
        late = n.links.tokens.issue(
            case_id="HUE-20240124-0042",
            cycle=0,
            level=0,
            recipient_id="hue-city-o1",
            now=clock.now(),
        )
        clock.advance(3601)
        expired = await client.post(f"/ack/{late}", headers=json_accept)
        assert expired.status_code == 410 and expired.json()["error"] == "expired"
    after = {r: ACK_REJECTED.labels(r)._value.get() for r in before}
    assert {r: after[r] - before[r] for r in before} == {
        "forged": 2,
        "expired": 1,
        "replayed": 1,
        "wrong_recipient": 2,
    }
    assert len(sandbox.sandbox.store.messages()) == 1


async def test_ack_from_the_ops_api_case_event_stops_escalation(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier()
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    clock.advance(130)
    await n.engine.tick()  # escalated to the commander
    data = example("CaseEvent")
    data.update(
        source="dispatcher",
        actor={"id": "hue-city-cmd", "role": "commander"},
        data={"via": "ops_api"},
    )
    await n.handlers.handle_case_event(CaseEvent.model_validate(data))
    clock.advance(600)
    assert (await n.engine.tick()).escalated == 0
    assert len(sandbox.sandbox.store.messages()) == 2
    claim = await n.repo.get_claim("ack:HUE-20240124-0042:0")
    assert claim is not None and claim["via"] == "ops_api" and claim["by"] == "hue-city-cmd"


async def test_ack_by_channel_reply_stops_escalation(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier()
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    reply = decision(
        decision_id="dec-reply-1",
        event_id="reply-1",
        action=DispatchAction.ACKNOWLEDGEMENT,
        alert=False,
        citizen_reply="none",
        reporter={"channel": "zalo", "address": "7700112233445566"},
    )
    assert await n.handlers.handle_decision(reply) == []
    clock.advance(600)
    await n.engine.tick()
    assert len(sandbox.sandbox.store.messages()) == 1
    claim = await n.repo.get_claim("ack:HUE-20240124-0042:0")
    assert claim is not None and claim["via"] == "reply:zalo"


async def test_two_replicas_never_send_the_same_escalation_step(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    a = await make_notifier()
    b = await make_notifier()  # a second replica on the same database
    cases = [f"HUE-20240124-{i:04d}" for i in range(1, 9)]
    for case in cases:
        await a.handlers.handle_decision(
            decision(case_id=case, decision_id=f"dec-{case}", informed=[], citizen_reply="none")
        )
    clock.advance(121)
    ra, rb = await asyncio.gather(a.engine.tick(), b.engine.tick())
    assert ra.escalated + rb.escalated == len(cases)
    commander = sandbox.sandbox.store.messages(to="+84905111000")
    assert len(commander) == len(cases)
    assert sorted(m.text.split("vụ việc ")[1].split(" ")[0] for m in commander) == cases
    # Ticking again at the same instant (both replicas) sends nothing more.
    await asyncio.gather(a.engine.tick(), b.engine.tick())
    assert len(sandbox.sandbox.store.messages(to="+84905111000")) == len(cases)


async def test_a_sweep_escalates_another_replicas_alerts_and_counts_the_unacknowledged(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    a = await make_notifier()
    for i in range(1, 4):
        case = f"HUE-20240124-{i:04d}"
        await a.handlers.handle_decision(
            decision(case_id=case, decision_id=f"dec-{case}", informed=[], citizen_reply="none")
        )
    b = await make_notifier()  # started later: knows none of these timers
    assert b.repo.timers == {}
    clock.advance(121)
    assert (await b.engine.tick(sweep=False)).escalated == 0  # nothing it knows is due
    assert (await b.engine.tick(sweep=True)).escalated == 3  # the sweep finds them all
    assert len(sandbox.sandbox.store.messages(to="+84905111000")) == 3
    assert UNACKNOWLEDGED_ALERTS.labels("P1")._value.get() == 3
    data = example("CaseEvent")
    data.update(
        case_id="HUE-20240124-0001",
        source="dispatcher",
        actor={"id": "hue-city-cmd", "role": "commander"},
        data={"via": "ops_api"},
    )
    await b.handlers.handle_case_event(CaseEvent.model_validate(data))
    await b.engine.tick(sweep=True)
    assert UNACKNOWLEDGED_ALERTS.labels("P1")._value.get() == 2


async def test_after_a_sweep_the_ticks_escalate_every_open_alert_by_id(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    """A sweep remembers every open alert's timer, due or not: the cheap ticks (reads by
    `_id`) escalate another replica's alerts on time, without waiting for the next sweep."""
    a = await make_notifier()
    cases = [f"HUE-20240124-{i:04d}" for i in range(11, 14)]
    for case in cases:
        await a.handlers.handle_decision(
            decision(case_id=case, decision_id=f"dec-{case}", informed=[], citizen_reply="none")
        )
    b = await make_notifier()
    clock.advance(60)
    assert (await b.engine.tick(sweep=True)).escalated == 0  # nothing due yet
    assert set(b.repo.timers) >= set(cases)
    clock.advance(61)
    assert (await b.engine.tick(sweep=False)).escalated == len(cases)
    assert len(sandbox.sandbox.store.messages(to="+84905111000")) == len(cases)


async def test_the_scheduler_spaces_its_sweeps_by_how_long_they_take(
    make_notifier: NotifierFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow sweep (a large collection on FerretDB) waits SWEEP_SPACING times its duration
    before the next one, however short `sweep_s`; the ticks in between go on."""
    n = await make_notifier()
    engine = n.engine
    engine.sweep_s = 0.01
    engine.interval_s = 0.02
    sweeps: list[float] = []
    ticks: list[bool] = []
    loop = asyncio.get_running_loop()

    async def slow_sweep(now: datetime, limit: int) -> tuple[list[Any], dict[str, int]]:
        sweeps.append(loop.time())
        await asyncio.sleep(0.1)
        return [], {}

    original_tick = engine.tick

    async def counting_tick(*, sweep: bool = True) -> Any:
        ticks.append(sweep)
        return await original_tick(sweep=sweep)

    monkeypatch.setattr(n.repo, "sweep", slow_sweep)
    monkeypatch.setattr(engine, "tick", counting_tick)
    runner = asyncio.create_task(engine.run())
    await asyncio.sleep(1.5)
    engine.stop()
    await asyncio.wait_for(runner, 5)
    # 0.1 s per sweep -> at least 1 s between sweeps: two in 1.5 s (without the spacing: ~12).
    assert 1 <= len(sweeps) <= 2, sweeps
    if len(sweeps) == 2:
        assert sweeps[1] - sweeps[0] >= SWEEP_SPACING * 0.1
    assert ticks.count(False) >= 10  # the cheap ticks ran meanwhile


async def test_a_step_whose_owner_died_is_taken_over_after_its_lease(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier(step_lease_s=30)
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    clock.advance(120)
    # A replica claimed level 1 and crashed before sending anything.
    assert await n.repo.claim("esc:HUE-20240124-0042:0:1", clock.now())
    assert (await n.engine.tick()).escalated == 0
    clock.advance(31)
    assert (await n.engine.tick()).escalated == 1
    assert len(sandbox.sandbox.store.messages(to="+84905111000")) == 1


async def test_quiet_hours_hold_a_p3_alert_until_morning_but_not_a_p1(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    clock.set(datetime(2024, 1, 24, 16, 30, tzinfo=UTC))  # 23:30 in Hue
    n = await make_notifier()
    p3 = decision(
        case_id="HUE-20240124-0100",
        decision_id="dec-p3",
        priority="P3",
        informed=[],
        citizen_reply="receipt",
    )
    outs = await n.handlers.handle_decision(p3)
    # The citizen still gets the receipt; the officer's alert waits.
    assert [m.to for m in sandbox.sandbox.store.messages()] == ["8800112233445566"]
    suppressed = [o for o in outcomes(outs) if o.status == DeliveryStatus.SUPPRESSED]
    assert [(o.purpose.value, o.recipient_id) for o in suppressed] == [("alert", "hue-city-o1")]
    await n.handlers.handle_decision(
        decision(
            case_id="HUE-20240124-0101", decision_id="dec-p1", informed=[], citizen_reply="none"
        )
    )
    assert len(sandbox.sandbox.store.messages(to="7700112233445566")) == 1  # P1 at once
    clock.set(datetime(2024, 1, 24, 22, 59, tzinfo=UTC))  # 05:59
    await n.engine.tick()
    # The P1 escalates through the night; the P3 does not move.
    assert len(sandbox.sandbox.store.messages(to="+84905111000")) == 1
    p3_alerts = sandbox.sandbox.store.messages(contains="HUE-20240124-0100", to="7700112233445566")
    assert p3_alerts == []
    clock.set(datetime(2024, 1, 24, 23, 0, tzinfo=UTC))  # 06:00
    await n.engine.tick()
    p3_alerts = sandbox.sandbox.store.messages(contains="HUE-20240124-0100", to="7700112233445566")
    assert len(p3_alerts) == 1 and "Thường" in p3_alerts[0].text
    state = await n.repo.get_alert("HUE-20240124-0100")
    assert state is not None and state.level == 0
    assert state.next_due_at == clock.now() + timedelta(seconds=120)


class _BrokerDown(Publisher):
    """A publisher whose broker never answers."""

    def __init__(self) -> None:
        pass

    async def publish_many(self, outs: Any, timeout_s: float | None = None) -> None:
        raise PublishError("broker unreachable (test)")


async def test_outputs_survive_a_broker_outage_in_the_outbox(
    make_notifier: NotifierFactory, kafka_bootstrap: str, topics: TopicNames
) -> None:
    notifier = await make_notifier()
    engine = notifier.engine
    real = engine.publisher
    event = events.CaseEvent(
        event_id="ev-outbox-1",
        case_id="HUE-20240124-0001",
        type=events.CaseEventType.ACKNOWLEDGED,
        source="notifier",
        actor=events.Actor(id="hue-city-o1", role="officer"),
        at=MORNING,
    )
    out = Outgoing.of(topics.case_events, event, key=event.case_id)
    engine.publisher = _BrokerDown()
    await engine.publish([out])  # gives up waiting and keeps it
    assert [o.value for _, o in await notifier.repo.stashed_outgoing()] == [out.value]
    assert await engine.flush_outbox() == 0  # still down: kept, in order
    engine.publisher = real
    assert await engine.flush_outbox() == 1
    assert await notifier.repo.stashed_outgoing() == []
    records = await read_topic(kafka_bootstrap, topics.case_events, expect=1)
    assert [r.value for r in records] == [out.value]
