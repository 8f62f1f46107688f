"""The console's pages and actions over an in-process dispatcher (real Kafka and FerretDB),
without a browser: what the person sees, what reaches the ops API, and with whose name."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hotline.contracts.events import DispatchDecision
from hotline.contracts.topics import TopicNames
from hotline.mongo import MotorDatabase
from hotline_console.app import build as build_console
from hotline_console.settings import ConsoleSettings
from hotline_dispatcher.config import load_organisation
from hotline_dispatcher.main import Components, build
from hotline_dispatcher.settings import DEV_TOKENS
from hotline_dispatcher.testing import MISSED_CALL, settings_for, triaged

pytestmark = pytest.mark.integration

STAFF = "dev-staff-token"
VIEWER = "dev-viewer-token"
OFFICER = "dev-officer-token"
CALL_TAKER = "dev-call-taker-token"
FIRE = "Cháy nhà ở kiệt 5 đường Lê Lợi, gọi 0905123456 giúp"


@dataclass
class Setup:
    dispatcher: Components
    console_app: Any
    ingest_calls: list[httpx.Request] = field(default_factory=list)
    ingest_answer: list[httpx.Response] = field(default_factory=list)

    async def open_case(self, text: str = FIRE, **kw: Any) -> str:
        kw.setdefault("category", "fire_rescue")
        outs = await self.dispatcher.dispatcher.dispatch_many([triaged(text, **kw)])
        decision = DispatchDecision.model_validate_json(outs[0].value)
        assert decision.case_id
        return decision.case_id

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.console_app), base_url="http://console"
        )

    async def ops(self, path: str) -> Any:
        transport = httpx.ASGITransport(app=self.dispatcher.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://d") as http:
            r = await http.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {STAFF}"})
            return r.json()


@pytest.fixture
async def setup(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    mongo_uri: str,
    mongo_db: MotorDatabase,
    topics: TopicNames,
    namespace: str,
) -> AsyncIterator[Setup]:
    """The dispatcher in process and the console over it; a test parametrizes `setup`
    (indirectly) with console settings of its own."""
    tokens = {t.get_secret_value(): i.model_dump() for t, i in DEV_TOKENS.items()}
    dsettings = settings_for(
        kafka=kafka_bootstrap,
        mongo_uri=mongo_uri,
        database=mongo_db.name,
        namespace=namespace,
        api_tokens=tokens,
    )
    dispatcher = build(dsettings, load_organisation(), consumers=False, maintenance=False)
    holder: Setup | None = None

    def ingest(request: httpx.Request) -> httpx.Response:
        assert holder is not None
        holder.ingest_calls.append(request)
        if holder.ingest_answer:
            return holder.ingest_answer.pop(0)
        return httpx.Response(202, json={"status": "accepted", "event_id": "0190-evt-000001"})

    overrides = getattr(request, "param", {})
    settings = ConsoleSettings(environment="test", topic_namespace=namespace, **overrides)
    console = build_console(
        settings,
        dispatcher_http=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=dispatcher.app), base_url="http://dispatcher"
        ),
        ingest_http=httpx.AsyncClient(
            transport=httpx.MockTransport(ingest), base_url="http://ingest"
        ),
        live=False,
    )
    holder = Setup(dispatcher, console.app)
    async with (
        dispatcher.app.router.lifespan_context(dispatcher.app),
        console.app.router.lifespan_context(console.app),
    ):
        yield holder


async def sign_in(client: httpx.AsyncClient, token: str) -> str:
    """Sign in as a browser would; returns the session's CSRF token."""
    page = await client.get("/sign-in")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    r = await client.post(
        "/sign-in", data={"token": token, "csrf_token": csrf.group(1), "next": "/"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    home = await client.get("/")
    assert home.status_code == 200
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert found is not None
    return found.group(1)


async def test_sign_in_sessions_and_security_headers(setup: Setup) -> None:
    async with setup.browser() as client:
        r = await client.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=%2F"
        assert (
            (await client.get("/queue/items", headers={"HX-Request": "true"}))
            .headers["HX-Redirect"]
            .startswith("/sign-in")
        )
        assert (await client.get("/events")).status_code == 401
        page = await client.get("/sign-in")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        bad = await client.post(
            "/sign-in", data={"token": "nope", "csrf_token": csrf.group(1), "next": "/"}
        )
        assert bad.status_code == 401 and "không đúng" in bad.text
        r = await client.post(
            "/sign-in",
            data={"token": STAFF, "csrf_token": csrf.group(1), "next": "https://evil.example/"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/"  # never off-site
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert STAFF not in r.headers["set-cookie"]
        queue = await client.get("/")
        assert queue.status_code == 200 and queue.headers["cache-control"] == "no-store"
        assert 'data-role="staff"' in queue.text
        english = await client.get("/lang/en", params={"next": "/today"})
        assert english.headers["location"] == "/today"
        assert "Today&#39;s figures" in (await client.get("/today")).text
        # A token revoked at the dispatcher ends the console session at the next request.
        setup.dispatcher.app.state.auth.tokens.pop(STAFF)
        r = await client.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/sign-in"
        assert (await client.get("/")).headers["location"].startswith("/sign-in")


async def test_actions_reach_the_timeline_with_the_person_as_actor(setup: Setup) -> None:
    case_id = await setup.open_case()
    async with setup.browser() as client:
        csrf = await sign_in(client, STAFF)
        steps = [
            ("acknowledge", {"note": "đã nhận"}),
            ("note", {"text": "Đội PCCC đã tới"}),
            ("directive", {"text": "Báo cáo kết quả trước 12 giờ", "due_in_minutes": "120"}),
            (
                "correct",
                {
                    "category": "fire_rescue",
                    "priority": "P2",
                    "location": "hue_city",
                    "reason": "không có người mắc kẹt",
                },
            ),
            ("resolve", {"outcome": "Đã dập tắt"}),
        ]
        for action, form in steps:
            r = await client.post(
                f"/cases/{case_id}/act/{action}", data={**form, "csrf_token": csrf}
            )
            assert r.status_code == 303 and r.headers["location"] == f"/cases/{case_id}", action
            page = await client.get(f"/cases/{case_id}")
            assert "Đã thực hiện" in page.text, (action, page.text[:3000])
            if action == "directive":  # the Staff Office's, for the Director: the page says so
                assert "Phòng Tham mưu, thừa lệnh Giám đốc: Báo cáo kết quả" in page.text
        refused = await client.post(f"/cases/{case_id}/act/acknowledge", data={"csrf_token": csrf})
        page = await client.get(refused.headers["location"])
        assert "Không thực hiện được" in page.text and "resolved" in page.text  # 409 shown
    case = await setup.ops(f"/cases/{case_id}")
    mine = [
        (e["type"], e["actor"]["id"]) for e in case["timeline"] if e["actor"]["id"] != "dispatcher"
    ]
    assert mine == [
        ("triaged", "classifier"),
        ("acknowledged", "pv01-leader"),
        ("note_added", "pv01-leader"),
        ("directive_added", "pv01-leader"),
        ("triage_corrected", "pv01-leader"),
        ("resolved", "pv01-leader"),
    ]
    assert case["priority"] == "P2" and case["directives"][0]["text"].startswith("Báo cáo")
    assert case["directives"][0]["issued_by"] == "staff_office"


async def test_the_assignment_reads_in_the_persons_language(setup: Setup) -> None:
    """The dispatcher's assignment entry is shown from its data, with the units' names in the
    page's language; its technical reasons (English, for audit) are folded away."""
    case_id = await setup.open_case(priority="P1", location="hue_city")
    case = await setup.ops(f"/cases/{case_id}")
    [assigned] = [e for e in case["timeline"] if e["type"] == "assigned"]
    units = {u["unit_id"]: u for u in await setup.ops("/units")}
    responsible = units[assigned["data"]["responsible_unit"]]
    informed = [units[u] for u in assigned["data"]["informed_units"]]
    assert informed, "a P1 informs the Director's office at least"
    async with setup.browser() as client:
        await sign_in(client, STAFF)
        for lang, name in (("vi", "name_vi"), ("en", "name_en")):
            await client.get(f"/lang/{lang}")
            page = (await client.get(f"/cases/{case_id}")).text
            entry = re.search(r'data-type="assigned".*?</li>', page, re.S)
            assert entry is not None
            label = "Đơn vị xử lý" if lang == "vi" else "Responding unit"
            assert f"{label}: {html.escape(responsible[name])}" in entry.group(0)
            assert assigned["data"]["assignee"]["name"] in entry.group(0)
            for unit in informed:
                assert html.escape(unit[name]) in entry.group(0)
            why = re.search(r'<details class="why">.*?</details>', entry.group(0), re.S)
            assert why is not None and html.escape(assigned["text"]) in why.group(0)


async def test_the_commune_a_report_names_is_shown_beside_its_district(setup: Setup) -> None:
    case_id = await setup.open_case(
        "Nước ngập sâu ở Phú Đa, cần ca nô", location="phu_vang", locality="Phú Đa"
    )
    bare = await setup.open_case(
        "Cây đổ chắn đường ở Phú Vang", category="traffic", location="phu_vang"
    )
    assert bare != case_id
    assert (await setup.ops(f"/cases/{case_id}"))["locality"] == "Phú Đa"
    async with setup.browser() as client:
        await sign_in(client, STAFF)
        page = (await client.get(f"/cases/{case_id}")).text
        assert '<span class="locality"> · Phú Đa</span>' in page
        queue = (await client.get("/")).text
        row = re.search(rf'<tr [^>]*data-case="{case_id}".*?</tr>', queue, re.S)
        assert row is not None and "· Phú Đa" in row.group(0)
        other = re.search(rf'<tr [^>]*data-case="{bare}".*?</tr>', queue, re.S)
        assert other is not None and "locality" not in other.group(0)
    # The same words from the next commune: a case of its own, which links the alike one.
    apart = await setup.open_case(
        "Nước ngập sâu ở Vinh Thanh, cần ca nô", location="phu_vang", locality="Vinh Thanh"
    )
    assert apart != case_id
    async with setup.browser() as client:
        await sign_in(client, STAFF)
        page = (await client.get(f"/cases/{apart}")).text
        link = f'Giống vụ <a href="/cases/{case_id}">{case_id}</a> nhưng ở địa điểm khác'
        assert link in page
        assert "Giống vụ" not in (await client.get(f"/cases/{case_id}")).text


def shown(html: str) -> list[tuple[str, str]]:
    """The (type, actor) of each entry of a case page's timeline, in order."""
    return re.findall(r'data-type="([^"]+)" data-actor="([^"]+)"', html)


def by_people(case: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The timeline entries the ops API has for a case that no service made: (type, actor,
    data)."""
    return [
        (e["type"], e["actor"]["id"], e["data"])
        for e in case["timeline"]
        if e["actor"]["id"] not in ("dispatcher", "classifier")
    ]


async def test_reassign_merge_and_split_reach_the_timeline_with_the_person_as_actor(
    setup: Setup,
) -> None:
    """The Staff Office's actions that move a case or its reports, posted as the case page's
    forms post them: each reaches the dispatcher with the person's token, is on the timeline
    with them as the actor, and leaves the cases as the person meant."""
    first = await setup.open_case(user_id="reshape-a")
    second = await setup.open_case(
        "Cướp giật điện thoại ở chợ An Cựu, có dao",
        category="theft",
        priority="P1",
        user_id="reshape-b",
    )
    assert first != second
    [opening] = [r["event_id"] for r in (await setup.ops(f"/cases/{first}"))["reports"]]
    [moved] = [r["event_id"] for r in (await setup.ops(f"/cases/{second}"))["reports"]]
    leader = "pv01-leader"

    async with setup.browser() as client:
        csrf = await sign_in(client, STAFF)

        async def act(case_id: str, action: str, form: dict[str, str]) -> str:
            r = await client.post(
                f"/cases/{case_id}/act/{action}", data={**form, "csrf_token": csrf}
            )
            assert r.status_code == 303, (action, r.text)
            page = await client.get(r.headers["location"])
            assert "Đã thực hiện" in page.text, (action, page.text[:3000])
            return str(r.headers["location"])

        page = (await client.get(f"/cases/{first}")).text
        assert 'id="form-reassign"' in page and '<option value="pc07-o2">' in page
        # To a unit: the person list left at "on call", so the unit's on-call officer.
        where = await act(
            first, "reassign", {"unit_id": "ca-phu-vang", "person_id": "", "reason": "sai địa bàn"}
        )
        assert where == f"/cases/{first}"
        case = await setup.ops(f"/cases/{first}")
        assert case["responsible_unit"] == "ca-phu-vang"
        on_call = case["assignee"]["person_id"]
        assert case["assignee"]["unit_id"] == "ca-phu-vang" and on_call.startswith("phu-vang-")
        # To an officer of another unit: the unit list still shows the case's own unit (as the
        # page preselects it); the person chosen decides the unit.
        where = await act(
            first,
            "reassign",
            {"unit_id": "ca-phu-vang", "person_id": "pc07-o2", "reason": "cần PCCC"},
        )
        assert where == f"/cases/{first}"
        case = await setup.ops(f"/cases/{first}")
        assert case["responsible_unit"] == "pc07" and case["state"] == "assigned"
        assert (case["assignee"]["person_id"], case["assignee"]["unit_id"]) == ("pc07-o2", "pc07")
        page = (await client.get(f"/cases/{first}")).text
        assert case["assignee"]["name"] in page

        # Merge: typed in lower case on the other case's page; the browser lands on the target.
        assert 'id="form-merge"' in (await client.get(f"/cases/{second}")).text
        where = await act(second, "merge", {"into": first.lower(), "reason": "cùng một vụ"})
        assert where == f"/cases/{first}"
        gone_page = (await client.get(f"/cases/{second}")).text
        assert 'data-state="closed"' in gone_page and f'href="/cases/{first}"' in gone_page
        assert 'id="form-merge"' not in gone_page
        joined = (await setup.ops(f"/cases/{first}"))["reports"]
        assert sorted(r["event_id"] for r in joined) == sorted([opening, moved])

        # Split: only the report that joined is offered; the browser lands on the new case.
        page = (await client.get(f"/cases/{first}")).text
        assert f'name="event_id" value="{moved}"' in page
        assert f'name="event_id" value="{opening}"' not in page  # the opening report is the case
        where = await act(first, "split", {"event_id": moved, "reason": "hai vụ khác nhau"})
        found = re.fullmatch(r"/cases/(HUE-\d{8}-\d{4,})", where)
        assert found is not None, where
        new = found.group(1)
        assert new not in (first, second)
        pages = {c: (await client.get(f"/cases/{c}")).text for c in (first, second, new)}

    kept, gone, split = [await setup.ops(f"/cases/{c}") for c in (first, second, new)]
    assert [(t, a) for t, a, _ in by_people(kept)] == [
        ("reassigned", leader),
        ("reassigned", leader),
        ("merged", leader),
        ("split", leader),
    ]
    to_unit, to_officer, merged, split_off = [d for _, _, d in by_people(kept)]
    assert (to_unit["unit"], to_unit["person"]) == ("ca-phu-vang", on_call)
    assert (to_officer["unit"], to_officer["person"]) == ("pc07", "pc07-o2")
    assert (merged["from"], merged["reports"]) == (second, [moved])
    assert split_off["to"] == new
    assert [e["text"] for e in kept["timeline"] if e["actor"]["id"] == leader] == [
        "sai địa bàn",
        "cần PCCC",
        "cùng một vụ",
        "hai vụ khác nhau",
    ]
    assert (gone["state"], gone["outcome"]) == ("closed", f"merged into {first}")
    [(kind, actor, data)] = by_people(gone)
    assert (kind, actor, data["into"], data["reports"]) == ("merged_into", leader, first, [moved])
    assert gone["reports"] == []
    assert [r["event_id"] for r in kept["reports"]] == [opening]  # the moved one went on
    assert [r["event_id"] for r in split["reports"]] == [moved]
    assert (split["state"], split["responsible_unit"], split["category"]) == (
        "assigned",
        "pc07",  # the unit the case had when it was split
        "theft",
    )
    assert split["text"].startswith("Cướp giật")
    assert [(t, a) for t, a, _ in by_people(split)] == [
        ("split_from", leader),
        ("assigned", leader),
    ]
    opened, assigned = [d for _, _, d in by_people(split)]
    assert opened["from"] == first
    assert (assigned["unit"], assigned["person"]) == ("pc07", split["assignee"]["person_id"])
    # The console shows each of those entries, with the person as the actor.
    for case in (kept, gone, split):
        page = pages[case["case_id"]]
        assert [(t, a) for t, a, _ in by_people(case)] == [
            entry for entry in shown(page) if entry[1] not in ("dispatcher", "classifier")
        ], case["case_id"]


async def test_what_each_role_is_offered_and_may_see(setup: Setup) -> None:
    case_id = await setup.open_case(phone="+84905123456", user_id=None, channel="sms")
    pages: dict[str, str] = {}
    for token in (VIEWER, OFFICER, STAFF):
        async with setup.browser() as client:
            await sign_in(client, token)
            pages[token] = (await client.get(f"/cases/{case_id}")).text
    assert (
        'id="read-only"' in pages[VIEWER]
        and '<form method="post" action="/cases' not in (pages[VIEWER])
    )
    assert "905123456" not in pages[VIEWER] and 'data-masked="yes"' in pages[VIEWER]
    assert 'id="form-acknowledge"' in pages[OFFICER] and 'id="form-merge"' not in pages[OFFICER]
    assert "+84905123456" in pages[OFFICER]  # their own unit's case
    for form in ("form-acknowledge", "form-reassign", "form-directive", "form-merge"):
        assert f'id="{form}"' in pages[STAFF]
    async with setup.browser() as client:
        csrf = await sign_in(client, VIEWER)
        assert (await client.get("/desk")).status_code == 403
        r = await client.post(f"/cases/{case_id}/act/note", data={"text": "x", "csrf_token": csrf})
        assert "không có quyền" in (await client.get(r.headers["location"])).text
        r = await client.post(f"/cases/{case_id}/act/note", data={"text": "x"})
        assert r.status_code == 403 and "hết hạn" in r.text
        assert (await client.get("/today/corrections.jsonl")).status_code == 403


async def test_the_desk_sends_calls_to_ingest_with_the_desk_token(setup: Setup) -> None:
    async with setup.browser() as client:
        csrf = await sign_in(client, CALL_TAKER)
        desk = await client.get("/desk")
        summary_id = re.search(r'name="summary_id" value="([^"]+)"', desk.text)
        assert summary_id is not None
        form = {
            "csrf_token": csrf,
            "summary_id": summary_id.group(1),
            "caller_number": "0912345678",
            "summary": "Người gọi báo cháy nhà kho",
            "place": "Kiệt 12 Phan Đình Phùng",
        }
        r = await client.post("/desk/calls", data=form)
        assert r.status_code == 303 and r.headers["location"] == "/desk?sent=0190-evt-000001"
        [call] = setup.ingest_calls
        assert call.url.path == "/desk/call-summaries"
        assert call.headers["authorization"] == "Bearer dev-desk-token"
        body = json.loads(call.content)
        assert body["caller_number"] == "0912345678" and body["summary_id"] == form["summary_id"]
        assert body["place"] == "Kiệt 12 Phan Đình Phùng"
        status = await client.get("/desk/calls/0190-evt-000001")
        assert 'hx-trigger="load delay:500ms"' in status.text  # not decided yet: keep polling
        setup.ingest_answer.append(
            httpx.Response(422, json={"detail": "caller_number: not a phone number"})
        )
        r = await client.post("/desk/calls", data={**form, "caller_number": "abc"})
        assert r.status_code == 422 and "not a phone number" in r.text
        assert 'value="abc"' in r.text  # the form keeps what was typed


async def test_board_override_and_today(setup: Setup) -> None:
    await setup.open_case()
    async with setup.browser() as client:
        csrf = await sign_in(client, STAFF)
        board = await client.get("/on-call")
        assert board.status_code == 200 and 'data-unit="ca-tp-hue"' in board.text
        r = await client.post(
            "/on-call/overrides",
            data={
                "csrf_token": csrf,
                "unit_id": "ca-phu-loc",
                "duty": "officer",
                "person_id": "phu-loc-cmd",
                "hours": "3",
                "reason": "trực tăng cường mùa lũ",
            },
        )
        assert r.status_code == 303
        board = await client.get("/on-call")
        assert "trực tăng cường mùa lũ" in board.text and "Đã thực hiện" in board.text
        today = await client.get("/today")
        assert today.status_code == 200 and today.text.count("<svg") >= 6
        assert 'id="director-line"' in today.text  # the case above is dated 2024-01-24
        export = await client.get("/today/corrections.jsonl")
        assert export.status_code == 200 and export.headers["content-type"].startswith(
            "application/x-ndjson"
        )
    listed = await setup.ops("/shift-overrides")
    assert [o["person_id"] for o in listed] == ["phu-loc-cmd"]


async def test_missed_calls_are_returned_from_the_desk(setup: Setup) -> None:
    case_id = await setup.open_case("", **MISSED_CALL)
    async with setup.browser() as client:
        csrf = await sign_in(client, CALL_TAKER)
        desk = await client.get("/desk")
        assert f'data-case="{case_id}"' in desk.text
        assert "+84912345678" in desk.text  # a call-taker sees the number to ring back
        r = await client.post(
            f"/desk/callbacks/{case_id}",
            data={"csrf_token": csrf, "reached": "no", "note": "không nghe máy"},
        )
        assert r.status_code == 303
        desk = await client.get("/desk")
        assert f'data-case="{case_id}"' not in desk.text and "Đã thực hiện" in desk.text
    async with setup.browser() as client:
        await sign_in(client, VIEWER)
        case = (await client.get(f"/cases/{case_id}")).text
        assert "912345678" not in case
    detail = await setup.ops(f"/cases/{case_id}")
    [done] = [e for e in detail["timeline"] if e["type"] == "callback_done"]
    assert done["actor"]["id"] == "pv01-ct1" and done["data"]["reached"] is False
    assert done["text"] == "không nghe máy"


async def test_a_greeting_that_was_a_report_is_corrected_into_a_case(setup: Setup) -> None:
    text = "Chào anh, em báo là nhóm thanh niên đang đánh nhau ở chợ Tứ Hạ, có người bị thương"
    outs = await setup.dispatcher.dispatcher.dispatch_many(
        [
            triaged(
                text,
                category="greeting",
                priority="P4",
                user_id="greeting-1",
                at=datetime.now(UTC) - timedelta(minutes=1),
            )
        ]
    )
    greeting = DispatchDecision.model_validate_json(outs[0].value)
    assert greeting.case_id is None
    form = {"category": "violence", "priority": "P2", "location": "huong_tra", "reason": "fight"}

    async with setup.browser() as client:  # a viewer is not offered it, and may not do it
        csrf = await sign_in(client, VIEWER)
        listing = (await client.get("/greetings")).text
        assert text in listing and "/correct" not in listing
        r = await client.post(
            f"/messages/{greeting.event_id}/correct", data={**form, "csrf_token": csrf}
        )
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "không có quyền" in (await client.get("/")).text

    async with setup.browser() as client:
        csrf = await sign_in(client, STAFF)
        listing = (await client.get("/greetings")).text
        assert f'action="/messages/{greeting.event_id}/correct"' in listing
        r = await client.post(f"/messages/{greeting.event_id}/correct", data=form)
        assert r.status_code == 403  # no CSRF token
        r = await client.post(
            f"/messages/{greeting.event_id}/correct", data={**form, "csrf_token": csrf}
        )
        assert r.status_code == 303, r.text
        target = r.headers["location"]
        assert re.fullmatch(r"/cases/HUE-\d{8}-\d{4,}", target), target
        page = (await client.get(target)).text
        assert "vụ việc đã được mở" in page
    case = await setup.ops(target)
    assert (case["category"], case["priority"], case["responsible_unit"]) == (
        "violence",
        "P2",
        "ca-huong-tra",
    )
    assert [r["event_id"] for r in case["reports"]] == [greeting.event_id]


async def test_the_search_reaches_messages_of_earlier_days(setup: Setup) -> None:
    marker = f"chao{uuid.uuid4().hex[:6]}"
    await setup.dispatcher.dispatcher.dispatch_many(
        [
            triaged(
                f"Chào các anh, chúc trực an toàn {marker}",
                category="greeting",
                priority="P4",
                user_id="greeting-old",
                at=datetime.now(UTC) - timedelta(days=3),
            )
        ]
    )
    async with setup.browser() as client:
        await sign_in(client, STAFF)
        page = (await client.get("/")).text
        assert '<select name="within">' in page and 'value="all"' in page
        today = (await client.get("/queue/items", params={"q": marker})).text
        assert marker not in today  # three days old: not today's
        for within in ("7d", "all"):
            found = await client.get("/queue/items", params={"q": marker, "within": within})
            assert f"{marker}</li>" in found.text.replace("\n", ""), within
        kept = (await client.get("/", params={"within": "all"})).text
        assert '<option value="all" selected>' in kept


async def test_failed_sign_ins_are_limited_per_client_behind_the_ingress(setup: Setup) -> None:
    """The in-process client connects from 127.0.0.1, a trusted proxy by default: each address
    the proxy forwards has its own limit, so one person's typos do not lock out the room."""
    limit = ConsoleSettings().sign_in_per_minute

    async def attempt(client: httpx.AsyncClient, forwarded_for: str) -> int:
        page = await client.get("/sign-in")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        r = await client.post(
            "/sign-in",
            data={"token": "wrong", "csrf_token": csrf.group(1), "next": "/"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        return r.status_code

    async with setup.browser() as client:
        assert [await attempt(client, "198.51.100.7") for _ in range(limit)] == [401] * limit
        assert await attempt(client, "198.51.100.7") == 429
        assert await attempt(client, "198.51.100.8") == 401  # another person behind the proxy
    # A peer that is not a trusted proxy is limited by its own address, whatever it forwards.
    untrusted = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=setup.console_app, client=("203.0.113.5", 4000)),
        base_url="http://console",
    )
    async with untrusted as client:
        statuses = [await attempt(client, f"198.51.100.{i}") for i in range(limit + 1)]
        assert statuses == [401] * limit + [429]


def rows(html: str, tbody: str) -> list[str]:
    """The case ids of a queue table's rows, in order."""
    body = re.search(rf'<tbody id="{tbody}">(.*?)</tbody>', html, re.S)
    return re.findall(r'data-case="([^"]+)"', body.group(1)) if body else []


@pytest.mark.parametrize("setup", [{"queue_page_size": 3}], indirect=True)
async def test_the_queue_is_most_urgent_first_a_page_at_a_time(setup: Setup) -> None:
    """Every open case can be reached, a page at a time, most urgent first by default (newest
    first within a priority) or newest first; the unacknowledged P1 is pinned on every page."""
    reports = [
        ("Mất trộm xe máy trước cổng trường Quốc Học", "theft", "P2", "hue_city"),
        ("Xe tải đậu chắn ngang đường liên xã", "traffic", "P3", "phong_dien"),
        ("Hai nhóm đánh nhau bằng dao ở thị trấn Phú Bài", "violence", "P1", "huong_thuy"),
        ("Xả rác thải xuống sông gây ô nhiễm", "environment", "P3", "phu_vang"),
        ("Nghi tụ tập sử dụng ma túy trong nhà hoang", "drugs", "P2", "huong_tra"),
        ("Cháy rừng lớn lan về phía khu dân cư", "fire_rescue", "P1", "a_luoi"),
        ("Hát karaoke ồn ào quá khuya làm mất trật tự", "public_order", "P3", "nam_dong"),
    ]
    now = datetime.now(UTC)
    ids = [
        await setup.open_case(
            text,
            category=category,
            priority=priority,
            location=district,
            user_id=f"page-{i}",
            at=now - timedelta(minutes=10 - i),
        )
        for i, (text, category, priority, district) in enumerate(reports)
    ]
    async with setup.browser() as client:
        csrf = await sign_in(client, STAFF)
        r = await client.post(f"/cases/{ids[2]}/act/acknowledge", data={"csrf_token": csrf})
        assert r.status_code == 303
        # What the ops API says of them (the dispatcher may change a triage's priority).
        cases = [await setup.ops(f"/cases/{case_id}") for case_id in ids]
        newest = sorted(cases, key=lambda c: (c["opened_at"], c["case_id"]), reverse=True)
        urgent = sorted(newest, key=lambda c: c["priority"])
        pinned = {c["case_id"] for c in cases if c["priority"] == "P1" and c["state"] == "assigned"}
        assert pinned and [c["case_id"] for c in urgent] != [c["case_id"] for c in newest]

        def page_of(order: list[dict[str, Any]], number: int) -> list[str]:
            part = order[(number - 1) * 3 : number * 3]
            return [c["case_id"] for c in part if c["case_id"] not in pinned]

        seen: list[str] = []
        for number in (1, 2, 3):
            html = (await client.get("/", params={"page": str(number)})).text
            assert rows(html, "queue-cases") == page_of(urgent, number), number
            assert set(rows(html, "pinned-cases")) == pinned  # on every page
            first, last = (number - 1) * 3 + 1, min(number * 3, 7)
            assert f'data-first="{first}" data-last="{last}" data-total="7"' in html
            assert ('rel="next" href="/?state=open&amp;page=' in html) == (number < 3)
            assert ('rel="prev"' in html) == (number > 1)
            seen += rows(html, "queue-cases")
        assert sorted(seen + list(pinned)) == sorted(ids)  # every case, each once
        # The live refresh asks for the page being looked at (#queue-page); a page that is
        # gone now shows the last one.
        html = (await client.get("/queue/items", params={"state": "open", "page": "2"})).text
        assert 'id="queue-page" name="page" value="2"' in html
        assert rows(html, "queue-cases") == page_of(urgent, 2)
        html = (await client.get("/", params={"page": "40"})).text
        assert 'id="queue-page" name="page" value="3"' in html
        assert rows(html, "queue-cases") == page_of(urgent, 3)
        # Newest first, on request; the page links keep the order.
        html = (await client.get("/", params={"sort": "newest", "page": "2"})).text
        assert rows(html, "queue-cases") == page_of(newest, 2)
        assert 'href="/?state=open&amp;sort=newest&amp;page=3"' in html
        assert 'href="/?state=open&amp;sort=newest"' in html  # back to its first page
        # Filters narrow the lists asked for.
        html = (await client.get("/", params={"priority": "P3"})).text
        p3 = [c["case_id"] for c in newest if c["priority"] == "P3"]
        assert rows(html, "queue-cases") == p3[:3] and f'data-total="{len(p3)}"' in html


async def test_the_directives_page_lists_what_waits_for_a_report_back(setup: Setup) -> None:
    """The Director's loop on one page: open directives by deadline (the overdue one on top,
    marked), the reported ones with their report, each linked to its case; by unit."""
    fire = await setup.open_case()
    gambling = await setup.open_case(
        "Nhóm người đánh bạc ăn tiền trong nhà kho sau chợ Sịa",
        category="gambling",
        priority="P2",  # P2 with a place: that district's police (P3 would go to PC06)
        location="quang_dien",
        user_id="8800112233440102",
    )
    theft = await setup.open_case(
        "Bị giật túi xách ở đầu cầu Trường Tiền",
        category="theft",
        priority="P2",
        user_id="8800112233440103",
    )
    async with setup.browser() as client:
        csrf = await sign_in(client, STAFF)
        for case_id, text, minutes in (
            (fire, "Báo cáo thiệt hại trước 12 giờ", "240"),
            (gambling, "Xác minh, triệt phá tụ điểm", "60"),
            (theft, "Truy tìm đối tượng giật túi", "120"),
        ):
            r = await client.post(
                f"/cases/{case_id}/act/directive",
                data={"text": text, "due_in_minutes": minutes, "csrf_token": csrf},
            )
            assert r.status_code == 303, r.text
        # The gambling directive's deadline passes (as if an hour and a half went by).
        directives = setup.dispatcher.repo.db["directives"]
        await directives.update_one(
            {"case_id": gambling},
            {"$set": {"deadline": datetime.now(UTC) - timedelta(minutes=30)}},
        )
        theft_directive = (await setup.ops(f"/cases/{theft}"))["directives"][0]["directive_id"]
        r = await client.post(
            f"/cases/{theft}/act/report_directive",
            data={
                "directive_id": theft_directive,
                "text": "Đã bắt giữ đối tượng",
                "csrf_token": csrf,
            },
        )
        assert r.status_code == 303, r.text

        page = await client.get("/directives")
        assert page.status_code == 200
        text = page.text
        waiting = text[
            text.index('id="directives-waiting"') : text.index('id="directives-reported"')
        ]
        reported = text[text.index('id="directives-reported"') :]
        # Longest overdue first, then by deadline; the reported one is no longer waiting.
        assert waiting.index(gambling) < waiting.index(fire) and theft not in waiting
        assert "Quá hạn 1" in waiting and "quá hạn 30 min" in waiting
        assert "còn 3 h 59 min" in waiting or "còn 4 h 00 min" in waiting
        assert f'href="/cases/{gambling}"' in waiting and "Công an huyện Quảng Điền" in waiting
        assert "Giám đốc chỉ đạo" not in waiting  # recorded by the Staff Office, for him
        assert "Phòng Tham mưu, thừa lệnh Giám đốc" in waiting
        assert theft in reported and "Đã bắt giữ đối tượng" in reported
        assert 'class="nav"' in text and 'href="/directives" aria-current="page"' in text
        # By unit: the Quảng Điền police have only the gambling directive.
        one = await client.get("/directives", params={"unit": "ca-quang-dien"})
        assert gambling in one.text and fire not in one.text and theft not in one.text
        live = await client.get("/directives/live", params={"unit": "ca-quang-dien"})
        assert live.status_code == 200 and gambling in live.text and "<html" not in live.text
    # A viewer reads it too (no actions on this page: reporting back is on the case page).
    async with setup.browser() as client:
        await sign_in(client, VIEWER)
        page = await client.get("/directives")
        assert page.status_code == 200 and gambling in page.text
        assert 'method="post"' not in page.text.split("</header>", 1)[1]
