"""The dispatch flow against the real database (FerretDB): cases, merges, idempotency."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect

from hotline.clock import ManualClock
from hotline.contracts.events import (
    Actor,
    CaseEvent,
    CaseEventType,
    CitizenReply,
    DispatchAction,
    DispatchDecision,
)
from hotline.contracts.labels import Channel
from hotline.contracts.topics import TopicNames
from hotline.kafka import Outgoing
from hotline.mongo import MotorDatabase
from hotline.runner import Transient
from hotline_dispatcher.config import Organisation, load_organisation
from hotline_dispatcher.flows import CLAIM_LEASE_S, Dispatcher
from hotline_dispatcher.ops import CaseService, case_reporters
from hotline_dispatcher.repository import Repository
from hotline_dispatcher.state import WorkingSet
from hotline_dispatcher.testing import MISSED_CALL, local, triaged

pytestmark = pytest.mark.integration

TOPICS = TopicNames.for_namespace("flowtest")
FIRE = "Cháy nhà ở kiệt 5 đường Lê Lợi, có người kẹt bên trong, cứu với"


@dataclass
class Env:
    org: Organisation
    repo: Repository
    clock: ManualClock
    working: WorkingSet
    dispatcher: Dispatcher
    cases: CaseService

    def fresh_dispatcher(self) -> Dispatcher:
        """Another process (empty memory) on the same database."""
        working = WorkingSet()
        service = CaseService(self.org, self.repo, self.clock, TOPICS, None, working)
        return Dispatcher(
            self.org,
            Repository(self.repo.db),
            self.clock,
            TOPICS,
            working,
            acknowledge=service.acknowledge_from_reply,
        )


@pytest.fixture
async def env(mongo_db: MotorDatabase) -> Env:
    org = load_organisation()
    repo = Repository(mongo_db)
    await repo.ensure_indexes()
    clock = ManualClock(local(2024, 1, 24, 8, 43))
    working = WorkingSet()
    service = CaseService(org, repo, clock, TOPICS, None, working)
    dispatcher = Dispatcher(
        org, repo, clock, TOPICS, working, acknowledge=service.acknowledge_from_reply
    )
    return Env(org, repo, clock, working, dispatcher, service)


def decisions(outs: list[Outgoing]) -> list[DispatchDecision]:
    return [
        DispatchDecision.model_validate_json(o.value) for o in outs if o.topic == TOPICS.dispatched
    ]


def case_events(outs: list[Outgoing]) -> list[CaseEvent]:
    return [CaseEvent.model_validate_json(o.value) for o in outs if o.topic == TOPICS.case_events]


async def test_a_p1_report_opens_an_assigned_case_with_its_timeline(env: Env) -> None:
    event = triaged(FIRE, category="fire_rescue", priority="P1", location="hue_city")
    outs = await env.dispatcher.dispatch_many([event])
    [decision] = decisions(outs)
    assert decision.action == DispatchAction.NEW_CASE
    assert decision.decision_id == f"dec-{event.event_id}"
    assert decision.case_id == "HUE-20240124-0001"
    assert decision.responsible_unit == "ca-tp-hue"
    assert decision.informed_units == ["bgd", "pc07"]
    assert decision.assignee is not None and decision.assignee.person_id == "hue-city-o2"
    assert decision.assignee.may_see_reporter
    assert [lvl.recipients[0].person_id for lvl in decision.escalation][-1] == "director"
    assert [(r.person_id, r.may_see_reporter) for r in decision.informed] == [
        ("director", True),
        ("pc07-o3", False),  # day 23 of the 3-day cycle: [o3, o1]
    ]
    assert decision.alert and decision.citizen_reply == CitizenReply.RECEIPT
    assert decision.reporter.address == "8800112233445566"
    assert [e.type for e in case_events(outs)] == [CaseEventType.OPENED]

    case = await env.repo.get_case("HUE-20240124-0001")
    assert case is not None
    assert (case["state"], case["priority"], case["opened_by"]) == (
        "assigned",
        "P1",
        event.event_id,
    )
    timeline = await env.repo.timeline("HUE-20240124-0001")
    assert [e["type"] for e in timeline] == ["opened", "triaged", "assigned"]
    assert timeline[0]["text"] == FIRE
    assert timeline[2]["actor"]["id"] == "dispatcher"
    assert timeline[1]["actor"]["id"] == "classifier"


async def test_a_desk_call_records_who_logged_it_on_the_case(env: Env) -> None:
    desk = dict(channel="desk", kind="call_summary", phone="+84912345678", user_id=None)
    call = triaged(FIRE, category="fire_rescue", logged_by="pv01-ct1", **desk)  # type: ignore[arg-type]
    [opened] = decisions(await env.dispatcher.dispatch_many([call]))
    timeline = await env.repo.timeline(str(opened.case_id))
    [logged] = [e for e in timeline if e["type"] == "call_logged"]
    assert logged["actor"]["id"] == "pv01-ct1" and logged["actor"]["role"] == "call_taker"
    assert logged["data"]["event_id"] == call.event_id
    # The console's own attribution afterwards is a no-op: one entry per call.
    actor = Actor(id="pv01-ct1", role="call_taker")
    await env.cases.log_call(call.event_id, actor)
    timeline = await env.repo.timeline(str(opened.case_id))
    assert [e["type"] for e in timeline].count("call_logged") == 1
    # A desk client that names nobody on the roster (its token's name): no entry.
    other = triaged("Báo mất xe ở chợ", category="theft", priority="P3", logged_by="pbx", **desk)  # type: ignore[arg-type]
    [second] = decisions(await env.dispatcher.dispatch_many([other]))
    entries = await env.repo.timeline(str(second.case_id))
    assert "call_logged" not in [e["type"] for e in entries]


async def test_case_ids_use_the_local_date_and_count_per_day(env: Env) -> None:
    # 23:30 local on the 24th is 16:30 UTC; 00:30 local on the 25th is still the 24th in UTC.
    a = triaged(
        "Trộm xe máy ở Vỹ Dạ",
        category="theft",
        priority="P2",
        at=local(2024, 1, 24, 23, 30),
        user_id="a",
    )
    b = triaged(
        "Đua xe trên đường Hùng Vương",
        category="traffic",
        priority="P2",
        at=local(2024, 1, 25, 0, 30),
        user_id="b",
    )
    c = triaged(
        "Đánh bạc ở Kim Long",
        category="gambling",
        priority="P2",
        at=local(2024, 1, 25, 0, 40),
        user_id="c",
    )
    ids = [d.case_id for d in decisions(await env.dispatcher.dispatch_many([a, b, c]))]
    assert ids == ["HUE-20240124-0001", "HUE-20240125-0001", "HUE-20240125-0002"]
    # Another process allocating the same day continues the sequence.
    d = triaged(
        "Trộm chó ở An Cựu", category="theft", priority="P2", at=local(2024, 1, 25, 1), user_id="d"
    )
    [other] = decisions(await env.fresh_dispatcher().dispatch_many([d]))
    assert other.case_id == "HUE-20240125-0003"
    assert all(re.fullmatch(r"HUE-\d{8}-\d{4}", i or "") for i in ids)


async def test_a_similar_report_joins_the_case_without_a_new_alert(env: Env) -> None:
    first = triaged(FIRE, category="fire_rescue", priority="P1", user_id="citizen-1")
    [opened] = decisions(await env.dispatcher.dispatch_many([first]))
    second = triaged(
        "chay nha o kiet 5 le loi, khoi bay mu mit",
        category="fire_rescue",
        priority="P1",
        user_id="citizen-2",
        at=local(2024, 1, 24, 8, 50),
    )
    outs = await env.dispatcher.dispatch_many([second])
    [merged] = decisions(outs)
    assert merged.action == DispatchAction.MERGED
    assert merged.case_id == opened.case_id
    assert not merged.alert and merged.escalation == [] and merged.assignee is None
    assert merged.citizen_reply == CitizenReply.RECEIPT  # the citizen still gets the case id
    assert [e.type for e in case_events(outs)] == [CaseEventType.REPORT_ADDED]
    timeline = await env.repo.timeline(str(opened.case_id))
    joined = [e for e in timeline if e["type"] == "report_added"]
    assert len(joined) == 1
    assert joined[0]["data"]["reason"] == "same_incident"
    assert "text similarity" in joined[0]["data"]["detail"]
    # The added report's own triage, as the opening report's `triaged` entry has it.
    triage = {k: joined[0]["data"][k] for k in ("category", "priority", "location")}
    assert triage == {"category": "fire_rescue", "priority": "P1", "location": "hue_city"}
    assert joined[0]["data"]["confidence"] == 0.9
    assert joined[0]["data"]["model_version"] == "test"
    assert joined[0]["data"]["reasons"] == []
    [opening] = [e for e in timeline if e["type"] == "triaged"]
    assert set(opening["data"]) <= set(joined[0]["data"])
    assert opened.case_id in joined[0]["data"]["detail"]
    reporters = await env.cases.reporters(str(opened.case_id))
    assert [r.address for r in reporters] == ["citizen-1", "citizen-2"]
    # When each last wrote: the closure goes as free text only within WhatsApp's 24 hours.
    assert [r.last_message_at for r in reporters] == [
        local(2024, 1, 24, 8, 42),
        local(2024, 1, 24, 8, 50),
    ]


def test_a_citizens_last_message_is_their_latest_report_on_the_channel_they_are_answered_on() -> (
    None
):
    def report(channel: str, at: datetime, key: str = "tel:+84905000111") -> dict[str, Any]:
        reporter = {"channel": channel, "phone": "+84905000111", "address": "+84905000111"}
        return {"reporter_key": key, "reporter": reporter, "channel": channel, "at": at}

    first, later, latest = (local(2024, 1, 24, h) for h in (8, 9, 10))
    [citizen] = case_reporters(
        [report("whatsapp", first), report("whatsapp", later), report("sms", latest)]
    )
    # Answered on WhatsApp, where they wrote first; their SMS an hour later opens no window.
    assert citizen.channel == Channel.WHATSAPP and citizen.last_message_at == later
    [stored] = case_reporters(
        [{**report("viber", first), "at": first.astimezone(UTC).replace(tzinfo=None)}]
    )
    assert stored.last_message_at == first  # naive datetimes from the database read as UTC
    assert case_reporters([{"reporter_key": "x", "channel": "sms", "at": first}]) == []


async def test_reports_that_must_not_merge_open_their_own_cases(env: Env) -> None:
    await env.dispatcher.dispatch_many([triaged(FIRE, category="fire_rescue", user_id="c1")])
    others = [
        # other district
        triaged(FIRE, category="fire_rescue", location="phu_loc", user_id="c2"),
        # same district, other incident
        triaged("Cháy rừng thông ở Kim Long, lửa lan nhanh", category="fire_rescue", user_id="c3"),
        # same text, later than the merge window (2 h)
        triaged(FIRE, category="fire_rescue", user_id="c4", at=local(2024, 1, 24, 11, 0)),
        # no location: never merged across citizens
        triaged(FIRE, category="fire_rescue", location=None, user_id="c5"),
    ]
    result = decisions(await env.dispatcher.dispatch_many(others))
    assert [d.action for d in result] == [DispatchAction.NEW_CASE] * 4
    assert len({d.case_id for d in result}) == 4


async def test_the_same_citizen_follows_up_on_their_own_case(env: Env) -> None:
    [opened] = decisions(
        await env.dispatcher.dispatch_many(
            [
                triaged(
                    FIRE, category="fire_rescue", phone="+84905123456", user_id=None, channel="sms"
                )
            ]
        )
    )
    follow = triaged(
        "Mọi người đã ra ngoài được rồi",
        category="other",
        priority="P3",
        location=None,
        phone="0905123456",  # same number, written nationally, on another channel
        user_id="zalo-77",
        channel="zalo",
        at=local(2024, 1, 24, 9, 5),
    )
    outs = await env.dispatcher.dispatch_many([follow])
    [decision] = decisions(outs)
    assert decision.action == DispatchAction.FOLLOWUP
    assert decision.case_id == opened.case_id
    assert not decision.alert and decision.citizen_reply == CitizenReply.NONE


THEFT = "Em bị trộm xe máy ở Kim Long tối qua"


async def test_a_new_incident_from_the_same_citizen_opens_its_own_case(env: Env) -> None:
    citizen = {"phone": "+84905123456", "user_id": None, "channel": "sms"}
    [theft] = decisions(
        await env.dispatcher.dispatch_many(
            [triaged(THEFT, category="theft", priority="P3", **citizen)]  # type: ignore[arg-type]
        )
    )
    assert (theft.action, theft.responsible_unit) == (DispatchAction.NEW_CASE, "pc02")
    fire = triaged(
        "Cháy nhà ở Lăng Cô, có người mắc kẹt",
        category="fire_rescue",
        priority="P1",
        location="phu_loc",
        at=local(2024, 1, 24, 9, 0),
        **citizen,  # type: ignore[arg-type]
    )
    [decision] = decisions(await env.dispatcher.dispatch_many([fire]))
    assert decision.action == DispatchAction.NEW_CASE and decision.case_id != theft.case_id
    assert decision.responsible_unit == "ca-phu-loc"
    assert decision.informed_units == ["bgd", "pc07"]
    assert decision.alert and decision.escalation[0].timeout_s == 120
    assert decision.assignee is not None and decision.assignee.unit_id == "ca-phu-loc"
    # A genuine follow-up still joins the case it is about, not the latest one.
    ask = triaged(
        "xin hỏi vụ trộm của em thế nào rồi",
        category="theft",
        priority="P3",
        location=None,
        at=local(2024, 1, 24, 9, 30),
        **citizen,  # type: ignore[arg-type]
    )
    [follow] = decisions(await env.dispatcher.dispatch_many([ask]))
    assert follow.action == DispatchAction.FOLLOWUP and follow.case_id == theft.case_id
    assert not follow.alert
    assert await env.repo.count_cases({}) == 2


async def test_more_urgent_news_informs_whoever_would_respond_to_it(env: Env) -> None:
    [theft] = decisions(
        await env.dispatcher.dispatch_many(
            [triaged(THEFT, category="theft", priority="P3", user_id="c1")]
        )
    )
    assert theft.responsible_unit == "pc02"
    back = triaged(
        "Kẻ trộm đang quay lại Kim Long, đang cạy khóa xe nhà bên",
        category="theft",
        priority="P2",
        user_id="c1",
        at=local(2024, 1, 24, 9, 0),
    )
    [later] = decisions(await env.dispatcher.dispatch_many([back]))
    assert later.action == DispatchAction.FOLLOWUP and later.case_id == theft.case_id
    assert later.alert and later.responsible_unit == "pc02"
    assert later.informed_units == ["ca-tp-hue"]  # responds to P2 thefts in Huế
    assert [r.person_id for r in later.informed] == ["hue-city-o2"]


async def test_more_urgent_news_on_an_open_case_alerts_its_chain_again(env: Env) -> None:
    [opened] = decisions(
        await env.dispatcher.dispatch_many(
            [
                triaged(
                    "Có nhóm thanh niên tụ tập gây gổ ở chợ Đông Ba",
                    category="violence",
                    priority="P2",
                    user_id="c1",
                )
            ]
        )
    )
    [later] = decisions(
        await env.dispatcher.dispatch_many(
            [
                triaged(
                    "Đang đâm nhau ở chợ Đông Ba, có máu",
                    category="violence",
                    priority="P1",
                    user_id="c1",
                )
            ]
        )
    )
    assert later.action == DispatchAction.FOLLOWUP and later.case_id == opened.case_id
    assert later.alert and later.escalation and later.escalation[0].timeout_s == 120
    assert "bgd" in later.informed_units
    assert await env.repo.apply_priority_raises() == 1  # the maintenance loop's step
    case = await env.repo.get_case(str(opened.case_id))
    assert case is not None and case["priority"] == "P1"


async def test_greetings_open_no_case_and_get_one_courtesy_reply_a_day(env: Env) -> None:
    hello = dict(category="greeting", priority="P4", location=None, user_id="friendly")
    first, second = triaged("Chào anh Tuấn", **hello), triaged("hôm nay chưa có gì", **hello)  # type: ignore[arg-type]
    result = decisions(await env.dispatcher.dispatch_many([first, second]))
    assert [d.action for d in result] == [DispatchAction.GREETING] * 2
    assert [d.citizen_reply for d in result] == [CitizenReply.COURTESY, CitizenReply.NONE]
    assert all(d.case_id is None and not d.alert for d in result)
    later = triaged("Chào buổi tối", **hello, at=local(2024, 1, 24, 21))  # type: ignore[arg-type]
    [again] = decisions(await env.dispatcher.dispatch_many([later]))
    assert again.citizen_reply == CitizenReply.NONE
    next_day = triaged("Chào buổi sáng", **hello, at=local(2024, 1, 25, 6))  # type: ignore[arg-type]
    [tomorrow] = decisions(await env.fresh_dispatcher().dispatch_many([next_day]))
    assert tomorrow.citizen_reply == CitizenReply.COURTESY
    assert await env.repo.count_cases({}) == 0


async def test_a_flood_limited_sender_gets_no_case_below_p1_but_an_emergency_goes_on(
    env: Env,
) -> None:
    theft = triaged(
        "Em bị trộm xe máy ở chợ Đông Ba",
        category="theft",
        priority="P2",
        user_id="flooder",
        flood_limited=True,
    )
    fire = triaged(FIRE, category="fire_rescue", priority="P1", user_id="flooder2")
    flagged_fire = fire.model_copy(update={"flood_limited": True})
    kept, emergency = decisions(await env.dispatcher.dispatch_many([theft, flagged_fire]))
    assert kept.action == DispatchAction.GREETING and kept.case_id is None and not kept.alert
    assert kept.citizen_reply == CitizenReply.NONE
    assert any("flood-limited" in r for r in kept.reasons)
    assert emergency.action == DispatchAction.NEW_CASE and emergency.alert
    assert await env.repo.count_cases({}) == 1


async def test_a_missed_call_becomes_a_callback_task_for_the_call_taker(env: Env) -> None:
    call = triaged("", **MISSED_CALL)
    [decision] = decisions(await env.dispatcher.dispatch_many([call]))
    assert decision.action == DispatchAction.CALLBACK
    assert decision.responsible_unit == "pv01"
    assert decision.assignee is not None and decision.assignee.role.value == "call_taker"
    assert decision.assignee.may_see_reporter
    assert decision.reporter.phone == "+84912345678"
    case = await env.repo.get_case(str(decision.case_id))
    assert case is not None and case["kind"] == "callback"
    # The same caller trying again joins the callback task.
    again = triaged(
        "",
        category="other",
        priority="P2",
        location=None,
        kind="call_missed",
        channel="voice",
        phone="+84912345678",
        user_id=None,
        at=local(2024, 1, 24, 8, 45),
    )
    [repeat] = decisions(await env.dispatcher.dispatch_many([again]))
    assert repeat.action == DispatchAction.FOLLOWUP and repeat.case_id == decision.case_id


async def test_a_missed_call_from_a_citizen_with_an_open_case_gets_a_callback(env: Env) -> None:
    citizen = {"phone": "+84912345678", "user_id": None}
    report = triaged(THEFT, category="theft", priority="P3", channel="sms", **citizen)  # type: ignore[arg-type]
    missed = {
        "category": "other",
        "priority": "P2",
        "location": None,
        "kind": "call_missed",
        "channel": "voice",
        **citizen,
    }
    call = triaged("", at=local(2024, 1, 24, 8, 50), **missed)  # type: ignore[arg-type]
    # In one batch: the call names the report's case, numbered in the same batch.
    opened, decision = decisions(await env.dispatcher.dispatch_many([report, call]))
    assert opened.action == DispatchAction.NEW_CASE
    assert decision.action == DispatchAction.CALLBACK
    assert decision.case_id not in (None, opened.case_id)
    assert decision.responsible_unit == "pv01" and decision.alert
    assert decision.assignee is not None and decision.assignee.role.value == "call_taker"
    assert f"the caller has open case {opened.case_id}" in decision.reasons
    timeline = await env.repo.timeline(str(opened.case_id))
    [called] = [e for e in timeline if e["type"] == "reporter_called"]
    assert called["data"]["callback_case_id"] == decision.case_id
    assert called["data"]["event_id"] == call.event_id
    # Calling again joins the open callback task, not the report case.
    again = triaged("", at=local(2024, 1, 24, 8, 55), **missed)  # type: ignore[arg-type]
    [repeat] = decisions(await env.dispatcher.dispatch_many([again]))
    assert repeat.action == DispatchAction.FOLLOWUP and repeat.case_id == decision.case_id
    # ... also in a restarted process (working set read from the database).
    restarted = env.fresh_dispatcher()
    await restarted.working.refresh(env.repo, local(2024, 1, 24, 9), timedelta(days=1))
    later = triaged("", at=local(2024, 1, 24, 9, 10), **missed)  # type: ignore[arg-type]
    [third] = decisions(await restarted.dispatch_many([later]))
    assert third.action == DispatchAction.FOLLOWUP and third.case_id == decision.case_id


async def test_an_officers_ok_reply_acknowledges_the_case(env: Env) -> None:
    [opened] = decisions(
        await env.dispatcher.dispatch_many([triaged(FIRE, category="fire_rescue")])
    )
    officer = env.org.people["hue-city-o2"]
    sms = next(c.address for c in officer.contacts if c.channel == "sms")
    reply = triaged(
        f"OK {opened.case_id}",
        category="other",
        priority="P3",
        location=None,
        channel="sms",
        phone=sms,
        user_id=None,
    )
    outs = await env.dispatcher.dispatch_many([reply])
    [decision] = decisions(outs)
    assert decision.action == DispatchAction.ACKNOWLEDGEMENT
    assert decision.case_id == opened.case_id and not decision.alert
    [ack] = case_events(outs)
    assert ack.type == CaseEventType.ACKNOWLEDGED and ack.actor.id == "hue-city-o2"
    assert ack.source == "dispatcher" and ack.data["via"] == "reply"
    case = await env.repo.get_case(str(opened.case_id))
    assert case is not None and case["state"] == "acknowledged"
    assert await env.repo.count_cases({}) == 1  # no case opened for the reply
    # A citizen writing the same words is not an officer: that is a report.
    citizen = triaged(
        f"OK {opened.case_id}", category="other", priority="P3", location=None, user_id="x"
    )
    [not_ack] = decisions(await env.dispatcher.dispatch_many([citizen]))
    assert not_ack.action != DispatchAction.ACKNOWLEDGEMENT


async def test_an_ok_reply_from_an_officer_off_the_chain_acknowledges_nothing(env: Env) -> None:
    [opened] = decisions(
        await env.dispatcher.dispatch_many([triaged(FIRE, category="fire_rescue")])
    )
    assert opened.responsible_unit != "pc02"
    stranger = env.org.people["pc02-o1"]  # criminal police: not on a Huế city fire's chain
    sms = next(c.address for c in stranger.contacts if c.channel == "sms")
    reply = dict(category="other", priority="P3", location=None, channel="sms", user_id=None)
    outs = await env.dispatcher.dispatch_many(
        [triaged(f"OK {opened.case_id}", phone=sms, **reply)]  # type: ignore[arg-type]
    )
    [decision] = decisions(outs)
    assert decision.action == DispatchAction.ACKNOWLEDGEMENT
    assert any("not on the escalation chain" in r for r in decision.reasons)
    assert case_events(outs) == []
    case = await env.repo.get_case(str(opened.case_id))
    assert case is not None and case["state"] == "assigned"
    # The Director may acknowledge any case by a reply.
    director = env.org.director
    phone = next(c.address for c in director.contacts if c.channel == "sms")
    outs = await env.dispatcher.dispatch_many(
        [triaged(f"OK {opened.case_id}", phone=phone, **reply)]  # type: ignore[arg-type]
    )
    [ack] = case_events(outs)
    assert ack.type == CaseEventType.ACKNOWLEDGED and ack.actor.id == director.id


async def test_redelivery_never_opens_a_second_case_or_decision(env: Env) -> None:
    event = triaged(FIRE, category="fire_rescue")
    first = await env.dispatcher.dispatch_many([event])
    again = await env.dispatcher.dispatch_many([event])
    assert [o.value for o in again] == [o.value for o in first]  # the stored decision, as it was
    # ... also from another replica, and twice within one batch
    elsewhere = await env.fresh_dispatcher().dispatch_many([event, event])
    assert [o.value for o in elsewhere] == [o.value for o in first]
    assert await env.repo.count_cases({}) == 1
    assert await env.repo.db["decisions"].count_documents({}) == 1
    assert len(await env.repo.timeline(str(decisions(first)[0].case_id))) == 3


async def test_a_case_opened_before_a_crash_is_resumed_on_redelivery(env: Env) -> None:
    event = triaged(FIRE, category="fire_rescue")
    outs = await env.dispatcher.dispatch_many([event])
    case_id = decisions(outs)[0].case_id
    # Simulate a crash after the case writes, before the decision was stored; the restarted
    # process gets the event again once its claim is past the lease.
    await env.repo.db["decisions"].delete_many({})
    env.clock.advance(CLAIM_LEASE_S)
    [again] = decisions(await env.fresh_dispatcher().dispatch_many([event]))
    assert again.case_id == case_id and again.action == DispatchAction.NEW_CASE
    assert again.assignee is not None and again.assignee.person_id == "hue-city-o2"
    assert await env.repo.count_cases({}) == 1
    assert len(await env.repo.timeline(str(case_id))) == 3
    # ... and from then on the stored decision is what a redelivery re-publishes.
    assert decisions(await env.dispatcher.dispatch_many([event]))[0] == again


async def test_an_event_claimed_but_never_decided_is_decided_after_the_lease(env: Env) -> None:
    event = triaged(FIRE, category="fire_rescue")
    key = f"dispatch:{event.event_id}"
    await env.repo.claim_many([key], env.clock.now())  # another consumer, which died right after
    with pytest.raises(Transient):  # it might still be deciding
        await env.dispatcher.dispatch_many([event])
    assert await env.repo.count_cases({}) == 0
    env.clock.advance(CLAIM_LEASE_S)
    [decision] = decisions(await env.dispatcher.dispatch_many([event]))
    assert decision.action == DispatchAction.NEW_CASE
    assert await env.repo.count_cases({}) == 1
    assert (await env.repo.claim_times([key]))[key] == env.clock.now()  # taken over


async def test_an_event_another_consumer_is_deciding_is_decided_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two consumers with the same event at once (a rebalance): the second waits for the first
    instead of opening a second case with a different decision."""
    event = triaged(FIRE, category="fire_rescue")
    first, second = env.dispatcher, env.fresh_dispatcher()
    real_insert = first.repo.insert_decisions

    async def database_gone(docs: Any) -> set[int]:
        raise AutoReconnect("connection reset")

    # The first consumer claims the event and writes its case, then loses the database.
    monkeypatch.setattr(first.repo, "insert_decisions", database_gone)
    with pytest.raises(AutoReconnect):
        await first.dispatch_many([event])
    # The second gets the event meanwhile: still being decided, so it is retried later; an
    # event of its own in the same batch is decided on its retry without waiting.
    other = triaged("Cháy rừng ở Phú Lộc", category="fire_rescue", location="phu_loc", user_id="b")
    with pytest.raises(Transient, match="claimed by another consumer"):
        await second.dispatch_many([event, other])
    assert await env.repo.count_cases({}) == 1
    [theirs] = decisions(await second.dispatch_many([other]))
    # The first consumer's runner retries its own attempt at once (no lease to wait for) ...
    monkeypatch.setattr(first.repo, "insert_decisions", real_insert)
    [decided] = decisions(await first.dispatch_many([event]))
    # ... and the second's retry re-publishes that decision.
    [again] = decisions(await second.dispatch_many([event]))
    assert again == decided and decided.case_id != theirs.case_id
    assert await env.repo.count_cases({}) == 2
    assert await env.repo.db["decisions"].count_documents({}) == 2


async def test_the_fewest_open_cases_and_the_working_set_survive_a_restart(env: Env) -> None:
    texts = ["Trộm xe máy ở Vỹ Dạ", "Mất cắp điện thoại tại ga Huế", "Giật túi xách đường Lê Lợi"]
    reports = [
        triaged(text, category="theft", priority="P2", user_id=f"u{i}")
        for i, text in enumerate(texts)
    ]
    result = decisions(await env.dispatcher.dispatch_many(reports))
    # Two on call (o2, o3): load-balanced 2/1.
    assert [d.assignee.person_id for d in result if d.assignee] == [
        "hue-city-o2",
        "hue-city-o3",
        "hue-city-o2",
    ]
    restarted = env.fresh_dispatcher()
    await restarted.working.refresh(
        env.repo, env.clock.now() + timedelta(minutes=1), timedelta(days=1)
    )
    assert restarted.working.loads == {"hue-city-o2": 2, "hue-city-o3": 1}
    [next_one] = decisions(
        await restarted.dispatch_many(
            [triaged("Trộm điện thoại ở Phú Hội", category="theft", priority="P2", user_id="u9")]
        )
    )
    assert next_one.assignee is not None and next_one.assignee.person_id == "hue-city-o3"
    # ... and a follow-up is recognised by the restarted process.
    [follow] = decisions(
        await restarted.dispatch_many(
            [
                triaged(
                    "thêm thông tin: xe màu đỏ",
                    category="other",
                    priority="P3",
                    location=None,
                    user_id="u0",
                )
            ]
        )
    )
    assert follow.action == DispatchAction.FOLLOWUP and follow.case_id == result[0].case_id


FLOOD = "Nước lên nhanh ở {}, nhà tôi có người già và trẻ nhỏ bị mắc kẹt trên mái, cứu với"


def _flood(where: str | None, user: str, minute: int) -> Any:
    return triaged(
        FLOOD.format(where or "huyện Phú Vang"),
        category="fire_rescue",
        priority="P1",
        location="phu_vang",
        locality=where,
        user_id=user,
        at=local(2024, 1, 24, 8, minute),
    )


async def test_two_communes_stranded_by_a_flood_are_two_cases_after_a_restart_too(
    env: Env,
) -> None:
    def kept_apart() -> float:
        return (
            REGISTRY.get_sample_value("hotline_dispatcher_kept_apart_total", {"by": "locality"})
            or 0.0
        )

    before = kept_apart()
    # The texts differ only by the commune; the district-wide report joins the first case.
    first, same_commune, district_only, other_commune = decisions(
        await env.dispatcher.dispatch_many(
            [
                _flood("Phú Đa", "c1", 42),
                _flood("chợ Phú Đa", "c2", 43),
                _flood(None, "c3", 44),
                _flood("Vinh Thanh", "c4", 45),
            ]
        )
    )
    assert first.action == DispatchAction.NEW_CASE
    assert (same_commune.action, same_commune.case_id) == (DispatchAction.MERGED, first.case_id)
    assert (district_only.action, district_only.case_id) == (DispatchAction.MERGED, first.case_id)
    assert other_commune.action == DispatchAction.NEW_CASE and other_commune.alert
    assert other_commune.case_id != first.case_id
    # Why a case of its own, for whoever wonders (the Staff Office can still merge them).
    assert (
        f"not merged into {first.case_id} (text similarity 0.91): another place: Vinh Thanh; "
        "the case: Phú Đa, chợ Phú Đa"
    ) in other_commune.reasons
    assert kept_apart() == before + 1
    timeline = await env.repo.timeline(str(other_commune.case_id))
    [assigned] = [e for e in timeline if e["type"] == "assigned"]
    assert assigned["data"]["kept_apart"] == {
        "case_id": first.case_id,
        "by": "locality",
        "detail": "another place: Vinh Thanh; the case: Phú Đa, chợ Phú Đa",
    }
    case = await env.repo.db["cases"].find_one({"_id": first.case_id})
    assert case is not None and case["locality"] == "Phú Đa"
    # A new process rebuilds what each case is about from the database.
    restarted = env.fresh_dispatcher()
    await restarted.working.refresh(
        env.repo, env.clock.now() + timedelta(minutes=1), timedelta(days=1)
    )
    assert restarted.working.index.cases[str(first.case_id)].localities == {
        "Phú Đa",
        "chợ Phú Đa",
    }
    later = decisions(
        await restarted.dispatch_many(
            [
                _flood("Vinh Thanh", "c5", 50),
                _flood("Vinh Xuân", "c6", 51),
                _flood("Phú Đa", "c7", 52),
            ]
        )
    )
    assert [(d.action, d.case_id) for d in later[:1] + later[2:]] == [
        (DispatchAction.MERGED, other_commune.case_id),
        (DispatchAction.MERGED, first.case_id),
    ]
    assert later[1].action == DispatchAction.NEW_CASE
    # The Staff Office moves the first case to another district: its communes go with it.
    staff = Actor(id="staff-1", role="staff")
    await env.cases.correct_triage(str(first.case_id), staff, {"location": "huong_thuy"}, "moved")
    corrected = await env.repo.db["cases"].find_one({"_id": first.case_id})
    assert corrected is not None
    assert (corrected["locality"], corrected["localities"]) == (None, [])
    again = env.fresh_dispatcher()
    await again.working.refresh(env.repo, env.clock.now() + timedelta(minutes=9), timedelta(days=1))
    assert again.working.index.cases[str(first.case_id)].localities == frozenset()


async def test_two_house_numbers_on_one_street_are_two_cases(env: Env) -> None:
    texts = [
        "Trộm xe máy ở nhà số 12 đường Lê Lợi",
        "trom xe may o nha so 14 duong le loi",
        "Trộm xe máy số 12 Lê Lợi vừa xong",
    ]
    result = decisions(
        await env.dispatcher.dispatch_many(
            [
                triaged(t, category="theft", priority="P2", user_id=f"t{i}")
                for i, t in enumerate(texts)
            ]
        )
    )
    assert [d.action for d in result] == [
        DispatchAction.NEW_CASE,
        DispatchAction.NEW_CASE,
        DispatchAction.MERGED,
    ]
    assert result[2].case_id == result[0].case_id
    assert any(
        r.startswith(f"not merged into {result[0].case_id}")
        and r.endswith("another address: house:14; the case: house:12")
        for r in result[1].reasons
    ), result[1].reasons


async def test_a_reassigned_case_and_a_merge_target_keep_the_places_they_learned(
    env: Env,
) -> None:
    staff = Actor(id="staff-1", role="staff")
    district_wide, joined = decisions(
        await env.dispatcher.dispatch_many([_flood(None, "c1", 42), _flood("Phú Đa", "c2", 43)])
    )
    assert joined.case_id == district_wide.case_id  # the case is now about Phú Đa
    await env.cases.reassign(
        str(district_wide.case_id), staff, "more hands", person_id="phu-vang-o2"
    )
    [other] = decisions(await env.dispatcher.dispatch_many([_flood("Vinh Thanh", "c3", 44)]))
    assert other.action == DispatchAction.NEW_CASE  # still about Phú Đa after the reassignment
    # The Staff Office decides the two are one incident: the target now covers both places.
    await env.cases.merge(str(other.case_id), str(district_wide.case_id), staff, "one flood")
    later = decisions(
        await env.dispatcher.dispatch_many(
            [_flood("Vinh Thanh", "c4", 45), _flood("Phú Đa", "c5", 46)]
        )
    )
    assert [(d.action, d.case_id) for d in later] == [
        (DispatchAction.MERGED, district_wide.case_id),
        (DispatchAction.MERGED, district_wide.case_id),
    ]
