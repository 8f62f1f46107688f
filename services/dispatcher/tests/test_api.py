"""The ops API: auth and roles, transitions and their 409s, the timeline with actors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hotline.clock import ManualClock
from hotline.contracts.events import CaseEvent, DispatchDecision
from hotline.contracts.topics import TopicNames
from hotline.testing.kafka import read_topic
from hotline_dispatcher import metrics
from hotline_dispatcher.config import load_organisation
from hotline_dispatcher.main import Components
from hotline_dispatcher.testing import MISSED_CALL, local, triaged

pytestmark = pytest.mark.integration

VIEWER = {"Authorization": "Bearer dev-viewer-token"}
OFFICER = {"Authorization": "Bearer dev-officer-token"}  # hue-city-o1, unit ca-tp-hue
STAFF = {"Authorization": "Bearer dev-staff-token"}
DIRECTOR = {"Authorization": "Bearer dev-director-token"}
OTHER_OFFICER = {"Authorization": "Bearer other-officer-token"}
FIRE = "Cháy nhà ở kiệt 5 đường Lê Lợi, gọi 0905123456 giúp"


@dataclass
class Api:
    http: httpx.AsyncClient
    components: Components
    clock: ManualClock
    topics: TopicNames

    async def open_case(self, text: str = FIRE, **kw: Any) -> str:
        kw.setdefault("category", "fire_rescue")
        outs = await self.components.dispatcher.dispatch_many([triaged(text, **kw)])
        decision = DispatchDecision.model_validate_json(outs[0].value)
        assert decision.case_id
        return decision.case_id


@pytest.fixture
async def api(serve_api: Callable[..., Any], topics: TopicNames) -> AsyncIterator[Api]:
    from hotline_dispatcher.settings import DEV_TOKENS, ApiIdentity

    tokens = {t.get_secret_value(): i.model_dump() for t, i in DEV_TOKENS.items()}
    tokens["other-officer-token"] = ApiIdentity(
        id="phu-loc-o1", role="officer", unit="ca-phu-loc"
    ).model_dump()
    clock = ManualClock(local(2024, 1, 24, 8, 43))
    async with serve_api(tokens, load_organisation(), clock) as (components, http):
        yield Api(http, components, clock, topics)


async def test_tokens_and_roles(api: Api) -> None:
    case_id = await api.open_case()
    r = await api.http.get("/api/v1/cases")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = await api.http.get("/api/v1/cases", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = await api.http.get("/api/v1/cases", headers=VIEWER)
    assert r.status_code == 200 and r.json()["total"] == 1
    # a viewer reads but may not act
    r = await api.http.post(f"/api/v1/cases/{case_id}/acknowledge", headers=VIEWER)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    # an officer acts only on their own unit's cases
    r = await api.http.post(f"/api/v1/cases/{case_id}/acknowledge", headers=OTHER_OFFICER)
    assert r.status_code == 403 and "own unit" in r.json()["detail"]
    # reassigning is for the Staff Office and above
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/reassign",
        headers=OFFICER,
        json={"unit_id": "pc07", "reason": "x"},
    )
    assert r.status_code == 403
    r = await api.http.post(f"/api/v1/cases/{case_id}/acknowledge", headers=OFFICER)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    me = await api.http.get("/api/v1/me", headers=DIRECTOR)
    assert me.json() == {
        "id": "director",
        "role": "director",
        "unit": "bgd",
        "name": "Nguyễn Thanh Tuấn",
    }


async def test_a_signed_out_console_session_is_refused_everywhere(api: Api) -> None:
    """The console names its session on every request; once signed out (from any console
    replica), requests naming it are 401 on every dispatcher replica (they share the database),
    while the same token in another session, or without one, still works."""
    mine = {**STAFF, "X-Hotline-Session": "s" * 22}
    other = {**STAFF, "X-Hotline-Session": "t" * 22}
    assert (await api.http.get("/api/v1/me", headers=mine)).status_code == 200
    until = (api.clock.now() + timedelta(hours=24)).isoformat()
    r = await api.http.post("/api/v1/session/sign-out", headers=mine, json={"until": until})
    assert r.status_code == 204
    r = await api.http.get("/api/v1/cases", headers=mine)
    assert r.status_code == 401 and "signed out" in r.json()["detail"]
    assert (await api.http.get("/api/v1/cases", headers=other)).status_code == 200
    assert (await api.http.get("/api/v1/cases", headers=STAFF)).status_code == 200
    # Signing out needs the session to name; a malformed session id is a 422 naming the header.
    r = await api.http.post("/api/v1/session/sign-out", headers=STAFF, json={"until": until})
    assert r.status_code == 400 and "X-Hotline-Session" in r.json()["detail"]
    r = await api.http.get("/api/v1/me", headers={**STAFF, "X-Hotline-Session": "short"})
    assert r.status_code == 422 and "X-Hotline-Session" in r.text
    # Remembered until the cookie would have expired (at most 7 days), then forgotten.
    repo = api.components.repo
    api.clock.advance(timedelta(hours=25))
    assert await repo.expire_signed_out_sessions(api.clock.now()) >= 1
    assert not await repo.session_signed_out("s" * 22)


async def test_unknown_case_and_invalid_transitions(api: Api) -> None:
    r = await api.http.get("/api/v1/cases/HUE-20240124-9999", headers=VIEWER)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await api.http.post("/api/v1/cases/HUE-20240124-9999/acknowledge", headers=STAFF)
    assert r.status_code == 404
    case_id = await api.open_case()
    r = await api.http.post(f"/api/v1/cases/{case_id}/close", headers=STAFF)
    assert r.status_code == 409
    assert r.json()["state"] == "assigned" and "cannot close" in r.json()["detail"]
    ok = await api.http.post(
        f"/api/v1/cases/{case_id}/resolve", headers=OFFICER, json={"outcome": "Đã dập lửa"}
    )
    assert ok.status_code == 200 and ok.json()["state"] == "resolved"
    again = await api.http.post(f"/api/v1/cases/{case_id}/acknowledge", headers=OFFICER)
    assert again.status_code == 409 and again.json()["state"] == "resolved"
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/resolve", headers=OFFICER, json={"outcome": ""}
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("case_id", "problem"),
    [
        ("nonexistent", "'nonexistent': not a case id (expected like HUE-20240124-0001)"),
        ("hue-20240124-0001", "case ids are upper-case (did you mean HUE-20240124-0001?)"),
        ("HUE-2024-1", "not a case id"),
        ("HUE-20240124-0001%0A", "not a case id"),  # a trailing newline is not part of an id
    ],
)
async def test_a_path_that_is_not_a_case_id_is_an_unknown_case(
    api: Api, case_id: str, problem: str
) -> None:
    await api.open_case()  # HUE-20240124-0001 exists: the problem is the spelling
    requests: list[tuple[str, str, dict[str, str], dict[str, Any] | None]] = [
        ("GET", "", VIEWER, None),
        ("POST", "/acknowledge", STAFF, None),
        ("POST", "/notes", OFFICER, {"text": "x"}),
        ("POST", "/reassign", STAFF, {"unit_id": "pc07", "reason": "x"}),
        ("POST", "/directives/d-1/report", OFFICER, {"text": "x"}),
        ("POST", "/triage", STAFF, {"priority": "P3", "reason": "x"}),
        ("POST", "/merge", STAFF, {"into": "HUE-20240124-0001", "reason": "x"}),
    ]
    for method, action, who, body in requests:
        r = await api.http.request(
            method, f"/api/v1/cases/{case_id}{action}", headers=who, json=body
        )
        assert r.status_code == 404, (action, r.text)
        assert r.json()["error"] == "not_found" and problem in r.json()["detail"], action
    r = await api.http.get(f"/api/v1/cases/{case_id}")
    assert r.status_code == 401  # who asks is checked first, whatever the id


async def test_the_case_life_cycle_is_on_the_timeline_with_its_actors(api: Api) -> None:
    case_id = await api.open_case()
    steps = [
        ("acknowledge", OFFICER, {"note": "đang tới"}, "acknowledged"),
        ("notes", OFFICER, {"text": "Đã có mặt, lửa lớn"}, "acknowledged"),
        ("resolve", OFFICER, {"outcome": "Đã dập tắt, không có thương vong"}, "resolved"),
        ("reopen", STAFF, {"reason": "Cháy lại"}, "assigned"),
        ("reassign", STAFF, {"unit_id": "pc07", "reason": "Cần lực lượng PCCC"}, "assigned"),
        ("acknowledge", DIRECTOR, None, "acknowledged"),
        ("resolve", STAFF, {"outcome": "Đã dập tắt hoàn toàn"}, "resolved"),
        ("close", STAFF, {"note": "Lưu hồ sơ"}, "closed"),
    ]
    for action, who, body, state in steps:
        api.clock.advance(60)
        r = await api.http.post(f"/api/v1/cases/{case_id}/{action}", headers=who, json=body)
        assert r.status_code == 200, (action, r.text)
        assert r.json()["state"] == state, action
    detail = (await api.http.get(f"/api/v1/cases/{case_id}", headers=VIEWER)).json()
    assert detail["state"] == "closed" and detail["responsible_unit"] == "pc07"
    assert detail["assignee"]["unit_id"] == "pc07"
    assert detail["outcome"] == "Đã dập tắt hoàn toàn"
    entries = [(e["type"], e["actor"]["id"]) for e in detail["timeline"]]
    assert entries == [
        ("opened", "dispatcher"),
        ("triaged", "classifier"),
        ("assigned", "dispatcher"),
        ("acknowledged", "hue-city-o1"),
        ("note_added", "hue-city-o1"),
        ("resolved", "hue-city-o1"),
        ("reopened", "pv01-leader"),
        ("reassigned", "pv01-leader"),
        ("acknowledged", "director"),
        ("resolved", "pv01-leader"),
        ("closed", "pv01-leader"),
    ]
    assert detail["allowed_actions"] == ["reopen", "note"]


async def test_case_events_are_published_for_the_notifier(api: Api, kafka_bootstrap: str) -> None:
    case_id = await api.open_case()
    await api.http.post(f"/api/v1/cases/{case_id}/acknowledge", headers=OFFICER)
    await api.http.post(
        f"/api/v1/cases/{case_id}/resolve", headers=OFFICER, json={"outcome": "xong"}
    )
    records = await read_topic(kafka_bootstrap, api.topics.case_events, expect=2, timeout_s=10)
    events = [CaseEvent.model_validate_json(r.value or b"") for r in records]
    assert [(e.type.value, e.source, e.case_id) for e in events] == [
        ("acknowledged", "dispatcher", case_id),
        ("resolved", "dispatcher", case_id),
    ]
    assert events[1].text == "xong"
    assert [r.address for r in events[1].reporters] == ["8800112233445566"]  # told of the closure
    assert await api.components.repo.db["outbox"].count_documents({}) == 0


async def test_viewers_see_reporters_masked_staff_see_them(api: Api) -> None:
    case_id = await api.open_case(phone="+84905123456", user_id=None, channel="sms")
    viewer = (await api.http.get(f"/api/v1/cases/{case_id}", headers=VIEWER)).json()
    staff = (await api.http.get(f"/api/v1/cases/{case_id}", headers=STAFF)).json()
    assert staff["reporter"]["phone"] == "+84905123456" and not staff["reporter"]["masked"]
    assert viewer["reporter"]["masked"] and "905123456" not in str(viewer)
    assert "0905123456" in staff["text"] and "0905123456" not in viewer["text"]
    own = (await api.http.get(f"/api/v1/cases/{case_id}", headers=OFFICER)).json()
    other = (await api.http.get(f"/api/v1/cases/{case_id}", headers=OTHER_OFFICER)).json()
    assert not own["reporter"]["masked"] and other["reporter"]["masked"]


async def test_list_and_filter_cases(api: Api) -> None:
    await api.open_case(user_id="a")
    await api.open_case(
        "Trộm xe máy ở Lăng Cô", category="theft", priority="P2", location="phu_loc", user_id="b"
    )
    await api.open_case(
        "Khai thác cát trái phép trên sông Bồ",
        category="environment",
        priority="P3",
        location="huong_tra",
        user_id="c",
    )

    async def ids(**params: Any) -> list[str]:
        r = await api.http.get("/api/v1/cases", headers=VIEWER, params=params)
        assert r.status_code == 200, r.text
        return [c["category"] for c in r.json()["items"]]

    assert sorted(await ids()) == ["environment", "fire_rescue", "theft"]
    assert await ids(unit="ca-phu-loc") == ["theft"]
    assert await ids(unit="pc05") == ["environment"]
    assert sorted(await ids(priority=["P1", "P2"])) == ["fire_rescue", "theft"]
    assert await ids(category="environment") == ["environment"]
    assert await ids(state="acknowledged") == []
    assert len(await ids(open_only="true")) == 3
    assert await ids(location="phu_loc") == ["theft"]
    assert (
        len(
            await ids(
                opened_from="2024-01-24T00:00:00+07:00", opened_to="2024-01-25T00:00:00+07:00"
            )
        )
        == 3
    )
    assert await ids(opened_from="2024-01-25T00:00:00+07:00") == []
    r = await api.http.get("/api/v1/cases", headers=VIEWER, params={"limit": 2})
    assert r.json()["total"] == 3 and len(r.json()["items"]) == 2
    r = await api.http.get("/api/v1/cases", headers=VIEWER, params={"priority": "P9"})
    assert r.status_code == 422


async def test_directive_lists_put_the_longest_overdue_and_the_latest_reported_first(
    api: Api,
) -> None:
    """What the console's directives page shows at its top: the open ones by deadline (the
    longest overdue first), the reported ones by report-back (the latest first)."""
    cases = [
        await api.open_case(text, category=category, user_id=user)
        for text, category, user in (
            ("Cháy nhà ở kiệt 5 đường Lê Lợi", "fire_rescue", "8800112233440101"),
            ("Đánh bạc ở chợ Sịa", "gambling", "8800112233440102"),
            ("Trộm xe máy ở phường Phú Hội", "theft", "8800112233440103"),
        )
    ]
    made = []
    for case_id, minutes in zip(cases, (120, 30, 60), strict=True):
        r = await api.http.post(
            f"/api/v1/cases/{case_id}/directives",
            headers=DIRECTOR,
            json={"text": f"báo cáo trong {minutes} phút", "due_in_minutes": minutes},
        )
        assert r.status_code == 201, r.text
        made.append(r.json()["directive_id"])

    async def listed(state: str) -> list[str]:
        r = await api.http.get("/api/v1/directives", headers=VIEWER, params={"state": state})
        assert r.status_code == 200, r.text
        return [d["directive_id"] for d in r.json()]

    assert await listed("open") == [made[1], made[2], made[0]]  # due in 30, 60, 120 min
    for i in (2, 0):  # the 60-minute one reported first, then the 120-minute one
        api.clock.advance(60)
        r = await api.http.post(
            f"/api/v1/cases/{cases[i]}/directives/{made[i]}/report",
            headers=DIRECTOR,
            json={"text": "đã xong"},
        )
        assert r.status_code == 200, r.text
    # The latest report first (by deadline, the 60-minute one would come first).
    assert await listed("reported") == [made[0], made[2]]
    assert await listed("open") == [made[1]]


async def test_directives_with_report_back_deadlines_and_reminders(
    api: Api, kafka_bootstrap: str
) -> None:
    case_id = await api.open_case()
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/directives",
        headers=DIRECTOR,
        json={"text": "Khẩn trương xác minh, báo cáo kết quả", "due_in_minutes": 60},
    )
    assert r.status_code == 201, r.text
    directive = r.json()
    assert directive["recipients"] == ["hue-city-cmd", "hue-city-o2"]
    assert directive["state"] == "open" and not directive["overdue"]
    assert directive["issued_by"] == "director"
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/directives", headers=OFFICER, json={"text": "x"}
    )
    assert r.status_code == 403  # directives come from the Director or the Staff Office

    cases = api.components.cases
    assert await cases.send_reminders() == 0
    api.clock.advance(timedelta(minutes=61))
    assert await cases.send_reminders() == 1
    assert await cases.send_reminders() == 0  # once per reminder interval
    assert metrics.OVERDUE_DIRECTIVES._value.get() == 1
    overdue = (
        await api.http.get("/api/v1/directives", headers=VIEWER, params={"state": "overdue"})
    ).json()
    assert [d["directive_id"] for d in overdue] == [directive["directive_id"]]
    api.clock.advance(timedelta(hours=1))
    assert await cases.send_reminders() == 1  # the next interval
    api.clock.advance(60)
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/directives/{directive['directive_id']}/report",
        headers=OFFICER,
        json={"text": "Đã xác minh, báo cáo như sau"},
    )
    assert r.status_code == 200 and r.json()["state"] == "reported"
    again = await api.http.post(
        f"/api/v1/cases/{case_id}/directives/{directive['directive_id']}/report",
        headers=OFFICER,
        json={"text": "lần nữa"},
    )
    assert again.status_code == 409
    api.clock.advance(timedelta(hours=5))
    assert await cases.send_reminders() == 0
    assert metrics.OVERDUE_DIRECTIVES._value.get() == 0

    records = await read_topic(kafka_bootstrap, api.topics.case_events, expect=4, timeout_s=10)
    types = [CaseEvent.model_validate_json(r.value or b"").type.value for r in records]
    assert types == ["directive_added", "reminder_due", "reminder_due", "directive_reported"]
    added = CaseEvent.model_validate_json(records[0].value or b"")
    assert added.deadline is not None and [p.person_id for p in added.recipients] == [
        "hue-city-cmd",
        "hue-city-o2",
    ]
    detail = (await api.http.get(f"/api/v1/cases/{case_id}", headers=VIEWER)).json()
    kinds = [e["type"] for e in detail["timeline"]]
    assert kinds[-4:] == ["directive_added", "reminder_due", "reminder_due", "directive_reported"]
    assert detail["directives"][0]["report"] == "Đã xác minh, báo cáo như sau"
    # Every event about it says whose directive it is, reminders included.
    assert [CaseEvent.model_validate_json(r.value or b"").data.get("issued_by") for r in records][
        :3
    ] == ["director"] * 3

    # The Staff Office records one on the Director's behalf.
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/directives",
        headers=STAFF,
        json={"text": "Phòng Tham mưu truyền đạt: bổ sung hồ sơ", "due_in_minutes": 30},
    )
    assert r.status_code == 201 and r.json()["issued_by"] == "staff_office", r.text
    detail = (await api.http.get(f"/api/v1/cases/{case_id}", headers=VIEWER)).json()
    assert [d["issued_by"] for d in detail["directives"]] == ["director", "staff_office"]
    assert detail["timeline"][-1]["data"]["issued_by"] == "staff_office"


async def test_callback_done(api: Api) -> None:
    case_id = await api.open_case("", **MISSED_CALL)
    r = await api.http.post(
        f"/api/v1/cases/{case_id}/callback-done",
        headers=STAFF,
        json={"reached": True, "note": "Đã gọi lại, người dân báo mất xe"},
    )
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    again = await api.http.post(
        f"/api/v1/cases/{case_id}/callback-done", headers=STAFF, json={"reached": True}
    )
    assert again.status_code == 409
    fire = await api.open_case(user_id="z")
    r = await api.http.post(
        f"/api/v1/cases/{fire}/callback-done", headers=STAFF, json={"reached": True}
    )
    assert r.status_code == 409


async def test_on_call_and_units(api: Api) -> None:
    r = await api.http.get(
        "/api/v1/on-call",
        headers=VIEWER,
        params={"unit": "ca-tp-hue", "at": "2024-01-25T02:30:00+07:00"},
    )
    assert r.status_code == 200
    [unit] = r.json()["units"]
    assert unit["duties"][0]["people"][0]["id"] == "hue-city-o4"  # the 24th's night shift
    assert unit["duties"][0]["people"][0]["contacts"] is None  # viewers see no contacts
    now = (await api.http.get("/api/v1/on-call", headers=STAFF)).json()
    pv01 = next(u for u in now["units"] if u["unit_id"] == "pv01")
    assert {d["duty"] for d in pv01["duties"]} == {"call_taker", "staff_leader"}
    assert pv01["duties"][0]["people"][0]["contacts"]
    units = (await api.http.get("/api/v1/units", headers=VIEWER)).json()
    assert len(units) == 20
    assert (
        await api.http.get("/api/v1/on-call", headers=VIEWER, params={"unit": "nope"})
    ).status_code == 404


async def test_daily_statistics_as_the_director_reports_them(api: Api) -> None:
    hello = {"category": "greeting", "priority": "P4", "location": None}
    events = [
        triaged("Chào anh", **hello, user_id="g1"),  # type: ignore[arg-type]
        triaged("hôm nay chưa có gì", **hello, user_id="g2", channel="viber"),  # type: ignore[arg-type]
        triaged(FIRE, category="fire_rescue", user_id="r1"),
        triaged("chay nha kiet 5 le loi", category="fire_rescue", user_id="r2", channel="sms"),
        triaged(
            "Trộm xe ở Lăng Cô", category="theft", priority="P2", location="phu_loc", user_id="r3"
        ),
        triaged("", **MISSED_CALL),
        triaged("Chào buổi tối", **hello, user_id="g3", at=local(2024, 1, 25, 0, 5)),  # type: ignore[arg-type]
    ]
    await api.components.dispatcher.dispatch_many(events)
    r = await api.http.get("/api/v1/stats/daily", headers=VIEWER, params={"date": "2024-01-24"})
    assert r.status_code == 200, r.text
    stats = r.json()
    assert (stats["messages"], stats["reports"], stats["greetings"]) == (6, 4, 2)
    assert (stats["new_cases"], stats["merged"], stats["callbacks"]) == (2, 1, 1)
    assert stats["by_channel"]["zalo"] == {"messages": 3, "reports": 2, "greetings": 1}
    assert stats["by_channel"]["viber"] == {"messages": 1, "reports": 0, "greetings": 1}
    assert stats["by_category"] == {"fire_rescue": 2, "other": 1, "theft": 1}
    assert stats["by_unit"] == {"ca-phu-loc": 1, "ca-tp-hue": 2, "pv01": 1}
    next_day = (
        await api.http.get("/api/v1/stats/daily", headers=VIEWER, params={"date": "2024-01-25"})
    ).json()
    assert (next_day["messages"], next_day["greetings"]) == (1, 1)


async def test_openapi_documents_the_api(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/api/v1/cases",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases/{case_id}/acknowledge",
        "/api/v1/cases/{case_id}/resolve",
        "/api/v1/cases/{case_id}/reassign",
        "/api/v1/cases/{case_id}/notes",
        "/api/v1/cases/{case_id}/directives",
        "/api/v1/cases/{case_id}/directives/{directive_id}/report",
        "/api/v1/cases/{case_id}/callback-done",
        "/api/v1/on-call",
        "/api/v1/stats/daily",
    ):
        assert path in paths, path
    detail = paths["/api/v1/cases/{case_id}"]["get"]["responses"]["200"]["content"]
    assert detail["application/json"]["schema"]["$ref"].endswith("/CaseDetail")
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
