"""The ops API endpoints added for the Staff Office console: the call-taker role, the message
feed, triage corrections and their export, merge and split, run-time shift overrides, the
board, and the Director's extra daily figures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hotline.clock import ManualClock
from hotline.contracts.events import CaseEvent, DispatchDecision, Role
from hotline.contracts.topics import TopicNames
from hotline.testing.kafka import read_topic
from hotline_dispatcher.config import load_organisation
from hotline_dispatcher.main import Components
from hotline_dispatcher.settings import DEV_TOKENS, ApiIdentity, ApiRole
from hotline_dispatcher.testing import MISSED_CALL, local, triaged

pytestmark = pytest.mark.integration

VIEWER = {"Authorization": "Bearer dev-viewer-token"}
CALL_TAKER = {"Authorization": "Bearer dev-call-taker-token"}  # pv01-ct1, off duty at 08:43
OFFICER = {"Authorization": "Bearer dev-officer-token"}  # hue-city-o1, ca-tp-hue
STAFF = {"Authorization": "Bearer dev-staff-token"}
FIRE = "Cháy nhà ở kiệt 5 đường Lê Lợi, gọi 0905123456 giúp"
THEFT = "Trộm cắp xe máy ở chợ An Cựu, kẻ gian đã chạy về hướng Hùng Vương"
KNIFE = "Có người cầm dao đâm nhau, nhiều máu lắm, gọi lại 0905123456"
# The API role a deployment gives each kind of person of the organisation (tokens `person-<id>`).
API_ROLE: dict[Role, ApiRole] = {
    Role.OFFICER: "officer",
    Role.COMMANDER: "officer",
    Role.CALL_TAKER: "call_taker",
    Role.STAFF_LEADER: "staff",
    Role.DIRECTOR: "director",
}


def person(person_id: str) -> dict[str, str]:
    """The headers of the API token of a person of the organisation."""
    return {"Authorization": f"Bearer person-{person_id}"}


ON_DUTY_CALL_TAKER = person("pv01-ct4")  # the Staff Office call-taker on call at 08:43


@dataclass
class Api:
    http: httpx.AsyncClient
    components: Components
    clock: ManualClock
    topics: TopicNames

    async def decide(self, text: str = FIRE, **kw: Any) -> DispatchDecision:
        kw.setdefault("category", "fire_rescue")
        kw.setdefault("at", self.clock.now() - timedelta(seconds=30))
        outs = await self.components.dispatcher.dispatch_many([triaged(text, **kw)])
        return DispatchDecision.model_validate_json(outs[0].value)

    async def open_case(self, text: str = FIRE, **kw: Any) -> str:
        decision = await self.decide(text, **kw)
        assert decision.case_id
        return decision.case_id

    async def get(self, path: str, who: dict[str, str] = STAFF, **kw: Any) -> Any:
        r = await self.http.get(f"/api/v1{path}", headers=who, **kw)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
async def api(serve_api: Callable[..., Any], topics: TopicNames) -> AsyncIterator[Api]:
    tokens = {t.get_secret_value(): i.model_dump() for t, i in DEV_TOKENS.items()}
    org = load_organisation()
    for p in org.people.values():
        who = ApiIdentity(id=p.id, role=API_ROLE[p.role], unit=p.unit_id)
        tokens[f"person-{p.id}"] = who.model_dump()
    clock = ManualClock(local(2024, 1, 24, 8, 43))
    async with serve_api(tokens, org, clock) as (components, http):
        yield Api(http, components, clock, topics)


async def test_call_takers_record_callbacks_but_not_act_on_others_reports(api: Api) -> None:
    missed = await api.open_case("", **MISSED_CALL)
    fire = await api.open_case(phone="+84905123456", user_id=None, channel="sms")
    me = await api.get("/me", CALL_TAKER)
    assert me["role"] == "call_taker" and me["id"] == "pv01-ct1"
    callback = await api.get(f"/cases/{missed}", CALL_TAKER)
    assert callback["reporter"]["phone"] == "+84912345678" and not callback["reporter"]["masked"]
    report = await api.get(f"/cases/{fire}", CALL_TAKER)
    assert report["reporter"]["masked"] and "905123456" not in json.dumps(report)
    for path, body in [
        (f"/cases/{fire}/acknowledge", None),
        (f"/cases/{fire}/notes", {"text": "x"}),
        (f"/cases/{fire}/callback-done", {"reached": True}),
        (f"/cases/{missed}/acknowledge", None),
        (f"/cases/{missed}/reassign", {"unit_id": "pc07", "reason": "x"}),
    ]:
        r = await api.http.post(f"/api/v1{path}", headers=CALL_TAKER, json=body)
        assert r.status_code == 403, path
    r = await api.http.post(
        f"/api/v1/cases/{missed}/notes", headers=CALL_TAKER, json={"text": "máy bận"}
    )
    assert r.status_code == 200
    r = await api.http.post(
        f"/api/v1/cases/{missed}/callback-done",
        headers=CALL_TAKER,
        json={"reached": True, "note": "đã gọi lại"},
    )
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    detail = await api.get(f"/cases/{missed}")
    done = [e for e in detail["timeline"] if e["type"] == "callback_done"]
    assert done[0]["actor"]["id"] == "pv01-ct1"


async def test_the_call_taker_holding_a_report_without_a_place_acts_on_it_and_forwards_it(
    api: Api, kafka_bootstrap: str
) -> None:
    """No place, no rule: the Staff Office decides, through its call-taker on duty. They ring
    the reporter back (so they see the number), acknowledge, note, and forward the report to
    the unit once they know where it happened; resolving stays with whoever handles it."""
    sms = {"phone": "+84905123456", "user_id": None, "channel": "sms"}
    decision = await api.decide(KNIFE, category="violence", priority="P1", location=None, **sms)
    case_id = decision.case_id
    assert case_id and decision.responsible_unit == "pv01"
    assert decision.assignee is not None and decision.assignee.person_id == "pv01-ct4"
    assert decision.assignee.may_see_reporter
    # Another call-taker (off duty) neither sees the reporter nor acts on it.
    other = await api.get(f"/cases/{case_id}", CALL_TAKER)
    assert other["reporter"]["masked"] and "905123456" not in json.dumps(other)
    for action, body in [
        ("acknowledge", None),
        ("notes", {"text": "x"}),
        ("reassign", {"unit_id": "ca-phu-vang", "reason": "x"}),
    ]:
        r = await api.http.post(f"/api/v1/cases/{case_id}/{action}", headers=CALL_TAKER, json=body)
        assert r.status_code == 403, action
        assert "assigned to them" in r.json()["detail"], action
    # The one it is assigned to does, and sees who to call back (the feed agrees).
    mine = await api.get(f"/cases/{case_id}", ON_DUTY_CALL_TAKER)
    assert mine["reporter"]["phone"] == "+84905123456" and not mine["reporter"]["masked"]
    assert "0905123456" in mine["text"]
    [message] = (await api.get("/messages", ON_DUTY_CALL_TAKER))["items"]
    assert message["reporter"]["phone"] == "+84905123456" and "0905123456" in message["text"]
    [masked] = (await api.get("/messages", CALL_TAKER))["items"]
    assert masked["reporter"]["masked"] and "905123456" not in json.dumps(masked)
    r = await api.http.post(f"/api/v1/cases/{case_id}/acknowledge", headers=ON_DUTY_CALL_TAKER)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/notes",
        headers=ON_DUTY_CALL_TAKER,
        json={"text": "Đã gọi lại: ở chợ Thuận An, Phú Vang"},
    )
    assert r.status_code == 200
    refused = [
        ("resolve", {"outcome": "x"}, "needs officer"),  # forwarding, not deciding the outcome
        ("reassign", {"person_id": "phu-vang-o1", "reason": "x"}, "forwards to a unit"),
        ("close", None, "needs staff"),
        ("directives", {"text": "x"}, "needs staff"),
    ]
    for action, body, why in refused:
        r = await api.http.post(
            f"/api/v1/cases/{case_id}/{action}", headers=ON_DUTY_CALL_TAKER, json=body
        )
        assert r.status_code == 403 and why in r.json()["detail"], action
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/reassign",
        headers=ON_DUTY_CALL_TAKER,
        json={"unit_id": "ca-phu-vang", "reason": "Người báo tin cho biết ở chợ Thuận An"},
    )
    assert r.status_code == 200, r.text
    forwarded = r.json()
    assert forwarded["responsible_unit"] == "ca-phu-vang" and forwarded["state"] == "assigned"
    assert forwarded["assignee"]["unit_id"] == "ca-phu-vang"
    events = [
        CaseEvent.model_validate_json(r.value)
        for r in await read_topic(kafka_bootstrap, api.topics.case_events)
    ]
    [reassigned] = [e for e in events if e.type == "reassigned"]
    assert reassigned.actor.id == "pv01-ct4" and reassigned.escalation  # the unit is alerted
    # From then on it is the unit's case: the call-taker no longer holds it.
    after = await api.get(f"/cases/{case_id}", ON_DUTY_CALL_TAKER)
    assert after["reporter"]["masked"]
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/notes", headers=ON_DUTY_CALL_TAKER, json={"text": "x"}
    )
    assert r.status_code == 403
    # A callback task of theirs stays with the call desk.
    missed = await api.open_case("", **MISSED_CALL)
    r = await api.http.post(
        f"/api/v1/cases/{missed}/reassign",
        headers=ON_DUTY_CALL_TAKER,
        json={"unit_id": "ca-phu-vang", "reason": "x"},
    )
    assert r.status_code == 403 and "call desk" in r.json()["detail"]


@pytest.mark.parametrize(
    "report",
    [
        # no place: the Staff Office decides (its call-taker), the Director informed (P1)
        {"text": KNIFE, "category": "violence", "priority": "P1", "location": None},
        # a district's police, the fire police and the Director informed
        {"text": FIRE, "category": "fire_rescue", "priority": "P1", "location": "hue_city"},
        # the Inspectorate, the Staff Office informed (its call-taker on duty, not holding it)
        {
            "text": "Cán bộ cảnh sát giao thông đòi tiền, gọi 0905123456",
            "category": "officer_conduct",
            "priority": "P2",
            "location": "phu_vang",
        },
        # a missed call: a callback task for the call-taker on duty
        {
            "text": "",
            "category": "other",
            "priority": "P2",
            "location": None,
            "kind": "call_missed",
            "channel": "voice",
        },
    ],
)
async def test_whom_a_decision_lets_see_the_reporter_the_api_lets_see_and_act(
    api: Api, report: dict[str, Any]
) -> None:
    """For everyone a dispatch decision names (escalation chain, informed units), the ops API
    agrees with its `may_see_reporter`: the reporter unmasked, and the case open to their
    notes, exactly when the decision says they may see who reported."""
    report = {"channel": "sms", "phone": "+84905123456", "user_id": None, **report}
    decision = await api.decide(**report)
    assert decision.case_id
    named = [r for level in decision.escalation for r in level.recipients] + decision.informed
    assert any(r.may_see_reporter for r in named)
    for r in named:
        detail = await api.get(f"/cases/{decision.case_id}", person(r.person_id))
        assert detail["reporter"]["masked"] is not r.may_see_reporter, r.person_id
        note = await api.http.post(
            f"/api/v1/cases/{decision.case_id}/notes",
            headers=person(r.person_id),
            json={"text": f"ghi chú của {r.person_id}"},
        )
        assert (note.status_code == 200) is r.may_see_reporter, (r.person_id, note.text)


async def test_the_message_feed_includes_greetings_and_masks_by_role(api: Api) -> None:
    await api.decide("Chào anh, chúc anh buổi sáng tốt lành", category="greeting", priority="P4")
    await api.open_case(phone="+84905123456", user_id=None, channel="sms")
    staff = await api.get("/messages")
    assert [m["action"] for m in staff["items"]] == ["new_case", "greeting"]  # newest first
    greeting = staff["items"][1]
    assert greeting["case_id"] is None and "buổi sáng" in greeting["text"]
    assert "0905123456" in staff["items"][0]["text"]
    viewer = await api.get("/messages", VIEWER)
    assert "905123456" not in json.dumps(viewer)
    found = await api.get("/messages", VIEWER, params={"q": "BUỔI SÁNG", "action": "greeting"})
    assert [m["event_id"] for m in found["items"]] == [greeting["event_id"]]
    r = await api.http.get("/api/v1/messages", headers=VIEWER, params={"q": "0905 123 456"})
    assert r.status_code == 403  # no probing for a masked number
    assert (await api.get("/messages", params={"q": "0905123456"}))["items"]
    r = await api.http.get("/api/v1/messages/nope-123", headers=VIEWER)
    assert r.status_code == 404
    one = await api.get(f"/messages/{greeting['event_id']}", VIEWER)
    assert one["action"] == "greeting"
    cases = await api.get("/cases", VIEWER, params={"q": "kiệt 5", "channel": "sms"})
    assert cases["total"] == 1 and cases["items"][0]["channel"] == "sms"
    assert (await api.get("/cases", params={"channel": "zalo"}))["total"] == 0


async def test_a_desk_call_is_attributed_to_the_person_who_logged_it(api: Api) -> None:
    decision = await api.decide(channel="desk", kind="call_summary", phone="+84912345678")
    assert decision.case_id
    for _ in range(2):  # idempotent: the console polls
        r = await api.http.post(f"/api/v1/messages/{decision.event_id}/logged", headers=CALL_TAKER)
        assert r.status_code == 200 and r.json()["case_id"] == decision.case_id
    detail = await api.get(f"/cases/{decision.case_id}")
    logged = [e for e in detail["timeline"] if e["type"] == "call_logged"]
    assert len(logged) == 1 and logged[0]["actor"]["id"] == "pv01-ct1"
    assert logged[0]["data"]["event_id"] == decision.event_id  # the call, as the pipeline's
    zalo = await api.decide(user_id="someone-else", text="Cháy lớn ở Phú Vang", location="phu_vang")
    r = await api.http.post(f"/api/v1/messages/{zalo.event_id}/logged", headers=CALL_TAKER)
    assert r.status_code == 409
    r = await api.http.post(f"/api/v1/messages/{zalo.event_id}/logged", headers=VIEWER)
    assert r.status_code == 403


async def test_triage_corrections_are_kept_and_exported_for_training(
    api: Api, kafka_bootstrap: str
) -> None:
    case_id = await api.open_case(THEFT, category="violence", priority="P1")
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/triage",
        headers=STAFF,
        json={"category": "theft", "priority": "P2", "reason": "trộm xe, không có bạo lực"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["category"], r.json()["priority"]) == ("theft", "P2")
    detail = await api.get(f"/cases/{case_id}")
    [entry] = [e for e in detail["timeline"] if e["type"] == "triage_corrected"]
    assert entry["actor"]["id"] == "pv01-leader"
    assert entry["data"]["before"]["category"] == "violence"
    assert entry["data"]["fields"] == ["category", "priority"]
    same = await api.http.post(
        f"/api/v1/cases/{case_id}/triage",
        headers=STAFF,
        json={"category": "theft", "reason": "again"},
    )
    assert same.status_code == 409
    other = {"Authorization": "Bearer dev-officer-token"}
    fire = await api.open_case(user_id="f", location="phu_loc", text="Cháy rừng ở Phú Lộc")
    r = await api.http.post(
        f"/api/v1/cases/{fire}/triage", headers=other, json={"priority": "P3", "reason": "x"}
    )
    assert r.status_code == 403  # not the officer's unit
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/triage", headers=STAFF, json={"reason": "nothing"}
    )
    assert r.status_code == 422
    greeting = await api.decide(
        "Dạ em chào anh, nhà em ở Hương Trà bị mất trộm bò đêm qua, gọi 0905111222",
        category="greeting",
        priority="P4",
        user_id="g",
    )
    r = await api.http.post(
        f"/api/v1/messages/{greeting.event_id}/triage",
        headers=STAFF,
        json={"category": "theft", "priority": "P3", "location": "huong_tra", "reason": "x"},
    )
    assert r.status_code == 201 and r.json()["after"]["actionable"] is True
    r = await api.http.get("/api/v1/corrections/export", headers=STAFF)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [sorted(x) for x in lines] == [
        sorted(
            ["id", "channel", "text", "category", "actionable", "priority", "location", "language"]
        )
    ] * 2
    [case_line] = [x for x in lines if x["text"].startswith("Trộm cắp")]
    assert (case_line["category"], case_line["priority"], case_line["actionable"]) == (
        "theft",
        "P2",
        True,
    )
    [cow] = [x for x in lines if "bò" in x["text"]]
    assert cow["location"] == "huong_tra" and "0905111222" not in cow["text"]  # masked
    assert (await api.http.get("/api/v1/corrections/export", headers=OFFICER)).status_code == 403
    records = await read_topic(
        kafka_bootstrap,
        api.topics.case_events,
        until=lambda rs: any(b"triage_corrected" in (r.value or b"") for r in rs),
        timeout_s=10,
        idle_s=0.1,
    )
    events = [CaseEvent.model_validate_json(r.value or b"") for r in records]
    assert any(e.type == "triage_corrected" and e.case_id == case_id for e in events)


async def test_a_greeting_corrected_into_a_report_gets_its_case_routed_and_alerted(
    api: Api, kafka_bootstrap: str
) -> None:
    greeting = await api.decide(
        "Chào anh, em báo là nhóm thanh niên đang đánh nhau ở chợ Tứ Hạ, có người bị thương",
        category="greeting",
        priority="P4",
        user_id="hello-but-not-only",
    )
    assert greeting.case_id is None
    r = await api.http.post(
        f"/api/v1/messages/{greeting.event_id}/triage",
        headers=STAFF,
        json={
            "category": "violence",
            "priority": "P2",
            "location": "huong_tra",
            "reason": "not a greeting: a fight",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    case_id = body["opened_case"]
    assert case_id and case_id.startswith("HUE-20240124-")

    case = await api.get(f"/cases/{case_id}")
    # P2 with a known district: that district's police responds (the default routing).
    assert (case["state"], case["category"], case["priority"], case["location"]) == (
        "assigned",
        "violence",
        "P2",
        "huong_tra",
    )
    assert case["responsible_unit"] == "ca-huong-tra"
    assert case["assignee"]["unit_id"] == "ca-huong-tra"
    assert [r["event_id"] for r in case["reports"]] == [greeting.event_id]
    types = [e["type"] for e in case["timeline"]]
    assert "opened_by_correction" in types and "assigned" in types, types

    # The notifier learns of it like of a split: `opened`, then `reassigned` with the chain.
    records = await read_topic(
        kafka_bootstrap,
        api.topics.case_events,
        until=lambda rs: sum(case_id.encode() in (r.value or b"") for r in rs) >= 2,
        timeout_s=10,
        idle_s=0.1,
    )
    events = [CaseEvent.model_validate_json(r.value or b"") for r in records]
    mine = [e for e in events if e.case_id == case_id]
    assert [e.type for e in mine] == ["opened", "reassigned"]
    assert mine[1].escalation and mine[1].recipients[0].unit_id == "ca-huong-tra"

    # A second correction of the same message changes the training data, not the cases.
    r = await api.http.post(
        f"/api/v1/messages/{greeting.event_id}/triage",
        headers=STAFF,
        json={"priority": "P1", "reason": "a knife was seen"},
    )
    assert r.status_code == 201 and r.json()["opened_case"] is None, r.text
    listed = await api.get("/cases", params={"limit": 50})
    items = listed["items"] if isinstance(listed, dict) else listed
    assert [c["case_id"] for c in items].count(case_id) == 1
    assert len(items) == 1


async def test_merge_and_split(api: Api, kafka_bootstrap: str) -> None:
    first = await api.open_case(THEFT, category="theft", priority="P3", user_id="a")
    second = await api.open_case(
        "Cướp giật điện thoại ở chợ An Cựu, có dao", category="theft", priority="P1", user_id="b"
    )
    r = await api.http.post(
        f"/api/v1/cases/{second}/merge", headers=OFFICER, json={"into": first, "reason": "x"}
    )
    assert r.status_code == 403
    r = await api.http.post(
        f"/api/v1/cases/{second}/merge",
        headers=STAFF,
        json={"into": first, "reason": "cùng một vụ"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["case_id"] == first and r.json()["priority"] == "P1"  # the more urgent
    gone = await api.get(f"/cases/{second}")
    assert gone["state"] == "closed" and gone["outcome"] == f"merged into {first}"
    kept = await api.get(f"/cases/{first}")
    assert len(kept["reports"]) == 2
    assert {e["type"] for e in kept["timeline"]} >= {"merged"}
    again = await api.http.post(
        f"/api/v1/cases/{second}/merge", headers=STAFF, json={"into": first, "reason": "x"}
    )
    assert again.status_code == 409
    moved = kept["reports"][1]["event_id"]
    opening = kept["reports"][0]["event_id"]
    r = await api.http.post(
        f"/api/v1/cases/{first}/split",
        headers=STAFF,
        json={"event_id": opening, "reason": "x"},
    )
    assert r.status_code == 409  # the opening report is the case
    r = await api.http.post(
        f"/api/v1/cases/{first}/split",
        headers=STAFF,
        json={"event_id": moved, "reason": "hai vụ khác nhau"},
    )
    assert r.status_code == 201, r.text
    new = r.json()["case_id"]
    assert new not in (first, second) and r.json()["state"] == "assigned"
    split = await api.get(f"/cases/{new}")
    assert [x["event_id"] for x in split["reports"]] == [moved]
    assert "Cướp giật" in split["text"]
    assert split["responsible_unit"] == kept["responsible_unit"] == split["assignee"]["unit_id"]
    after = await api.get(f"/cases/{first}")
    assert len(after["reports"]) == 1
    [entry] = [e for e in after["timeline"] if e["type"] == "split"]
    assert entry["data"]["to"] == new and entry["data"]["event_id"] == moved
    records = await read_topic(
        kafka_bootstrap,
        api.topics.case_events,
        until=lambda rs: any(b'"reassigned"' in (r.value or b"") for r in rs),
        timeout_s=10,
        idle_s=0.1,
    )
    events = [CaseEvent.model_validate_json(r.value or b"") for r in records]
    closed = [e for e in events if e.type == "closed" and e.case_id == second]
    assert closed and closed[0].data["merged_into"] == first  # the notifier stops escalating
    started = [e for e in events if e.type == "reassigned" and e.case_id == new]
    assert started and started[0].escalation  # the notifier starts the new case's chain


async def test_shift_overrides_change_who_is_on_call(api: Api) -> None:
    async def officers() -> list[str]:
        out = await api.get("/on-call", VIEWER, params={"unit": "ca-tp-hue"})
        return [p["id"] for d in out["units"][0]["duties"] for p in d["people"]]

    before = await officers()
    replaced = before[0]
    r = await api.http.post(
        "/api/v1/shift-overrides",
        headers=STAFF,
        json={
            "unit_id": "ca-tp-hue",
            "person_id": "hue-city-cmd",
            "replaces_id": replaced,
            "hours": 2,
            "reason": "ốm, chỉ huy trực thay",
        },
    )
    assert r.status_code == 201, r.text
    override = r.json()
    assert override["active"] and override["by"]["id"] == "pv01-leader"
    now = await officers()
    assert replaced not in now and "hue-city-cmd" in now
    case_id = await api.open_case(
        user_id="x1",
        text="Đánh nhau ở chợ Đông Ba",
        category="violence",
        at=api.clock.now() + timedelta(seconds=1),
    )
    # A case opened now goes to whoever is on call with the override applied.
    assignee = (await api.get(f"/cases/{case_id}"))["assignee"]["person_id"]
    assert assignee in now
    listed = await api.get("/shift-overrides", VIEWER)
    assert [o["override_id"] for o in listed] == [override["override_id"]]
    api.clock.advance(3 * 3600)
    await api.components.cases.refresh_shifts()
    assert await api.get("/shift-overrides", VIEWER) == []  # over
    api.clock.advance(-3 * 3600)
    await api.components.cases.refresh_shifts()
    r = await api.http.delete(f"/api/v1/shift-overrides/{override['override_id']}", headers=STAFF)
    assert r.status_code == 200 and r.json()["cancelled_at"]
    assert await officers() == before
    for body in [
        {"unit_id": "nope", "person_id": "hue-city-cmd", "hours": 1, "reason": "x"},
        {"unit_id": "ca-tp-hue", "person_id": "nobody", "hours": 1, "reason": "x"},
        {
            "unit_id": "ca-tp-hue",
            "person_id": "hue-city-cmd",
            "replaces_id": "pv01-ct1",
            "hours": 1,
            "reason": "x",
        },
        {
            "unit_id": "ca-tp-hue",
            "duty": "call_taker",
            "person_id": "hue-city-cmd",
            "hours": 1,
            "reason": "x",
        },
        {"unit_id": "ca-tp-hue", "person_id": "hue-city-cmd", "reason": "x"},
    ]:
        r = await api.http.post("/api/v1/shift-overrides", headers=STAFF, json=body)
        assert r.status_code == 422, body
    r = await api.http.post(
        "/api/v1/shift-overrides",
        headers=OFFICER,
        json={"unit_id": "ca-tp-hue", "person_id": "hue-city-cmd", "hours": 1, "reason": "x"},
    )
    assert r.status_code == 403


async def test_board_people_and_the_directors_figures(api: Api) -> None:
    p1 = await api.open_case(
        user_id="a",
        text="Đánh nhau bằng dao ở chợ Đông Ba",
        category="violence",
        locality="chợ Đông Ba",
    )
    await api.open_case(user_id="b", text="Cháy nhà ở Phú Lộc", location="phu_loc", priority="P2")
    await api.decide(  # a second report of the fight: the place counts its reports
        user_id="d",
        text="dánh nhau bằng dao o cho dong ba",
        category="violence",
        locality="chợ Đông Ba",
    )
    await api.decide("Chào anh", category="greeting", priority="P4", user_id="c")
    api.clock.advance(90)
    await api.http.post(f"/api/v1/cases/{p1}/acknowledge", headers=OFFICER)
    board = await api.get("/board", VIEWER)
    hue = board["units"]["ca-tp-hue"]
    assert (hue["open"], hue["unacknowledged"], hue["p1_unacknowledged"]) == (1, 0, 0)
    loc = board["units"]["ca-phu-loc"]
    assert (loc["open"], loc["unacknowledged"]) == (1, 1)
    api.clock.advance(3600)
    assert (await api.get("/board", VIEWER))["units"]["ca-phu-loc"]["overdue"] == 1
    people = await api.get("/people", VIEWER, params={"unit": "ca-tp-hue"})
    assert {p["unit_id"] for p in people} == {"ca-tp-hue"} and people[0]["contacts"] is None
    assert (await api.get("/people", STAFF, params={"unit": "pv01"}))[0]["contacts"]
    stats = await api.get("/stats/daily", VIEWER, params={"date": "2024-01-24"})
    assert stats["by_district"] == {"hue_city": 2, "phu_loc": 1}
    # Where: only reports naming a place inside a district (Phú Lộc's names the district).
    assert stats["top_places"] == [
        {"location": "hue_city", "locality": "chợ Đông Ba", "reports": 2}
    ]
    assert sum(h["messages"] for h in stats["by_hour"]) == 4
    assert stats["by_hour"][8]["greetings"] == 1  # the local hour (08:42)
    ack = stats["time_to_acknowledge"]
    assert ack["P1"] == {"cases": 1, "acknowledged": 1, "median_s": 120.0}  # 30 s + 90 s
    assert ack["P2"]["acknowledged"] == 0 and ack["P2"]["median_s"] is None
