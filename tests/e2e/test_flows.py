"""End to end through the four services on the real stack: a signed webhook in, the provider
sandbox's messages and the case file (through the ops API) out.

One pipeline for the module, with P1 acknowledgement timeouts of a few seconds so the
escalation to the Director runs within the test. Every test uses its own citizens, so the tests
do not depend on each other's cases.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import httpx
import pytest

from hotline.contracts import DispatchDecision
from hotline.contracts.events import DispatchAction, Recipient, Role
from hotline.contracts.topics import TopicNames
from hotline.mongo import MotorDatabase
from hotline.testing.e2e import OpsClient, ProviderClient, SandboxClient, eventually, zalo_id
from hotline.testing.kafka import read_topic
from hotline_cli.pipeline import Pipeline
from hotline_ingest.samples import Samples

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# P1 escalates every 3 s (officer → commander → Staff Office leader → Director); the other
# priorities keep timeouts longer than the module takes.
ESCALATION_TIMEOUTS_S = {"P1": 3, "P2": 600, "P3": 600}

CASE_ID = re.compile(r"\bHUE-\d{8}-\d{4,}\b")
ACK_URL = re.compile(r"https?://\S+/ack/[A-Za-z0-9_\-.=~]+")

THEFT = (
    "Em vừa bị hai thanh niên đi xe Exciter giật túi xách ở đầu cầu Trường Tiền, tụi nó chạy về "
    "hướng đường Lê Lợi, mới xảy ra 5 phút trước"
)
KNIFE = (
    "Anh ơi cứu với, có nhóm thanh niên đang cầm dao chém nhau trước quán nhậu trên đường Hùng "
    "Vương, một người nằm bất tỉnh máu chảy nhiều lắm"
)
FIRE_1 = "Cháy lớn ở chợ Phú Đa, huyện Phú Vang, khói bốc cao, nhiều ki ốt đang cháy"
FIRE_2 = (
    "cho phu da dang chay lon, khoi boc cao lam, nhieu ki ot bi chay, cac anh cho xe cuu hoa "
    "toi gap"
)
CRASH_1 = (
    "Tai nạn giữa xe tải và xe máy trên quốc lộ 1A đoạn qua Phú Bài, người đi xe máy bất tỉnh, "
    "mọi người đang gọi cấp cứu"
)
CRASH_2 = (
    "Vừa có tai nạn xe tải đâm xe máy trên quốc lộ 1A qua Phú Bài, người đi xe máy nằm bất tỉnh "
    "giữa đường"
)
SCAM = (
    "Mẹ em vừa nhận cuộc gọi tự xưng công an phường Phú Hội, bảo mẹ em liên quan đường dây rửa "
    "tiền và yêu cầu chuyển 50 triệu vào tài khoản tạm giữ, mẹ em đang chuẩn bị ra ngân hàng"
)
DRUGS = (
    "Khu trọ gần chợ Thủy Dương tối nào cũng có mấy thanh niên tụ tập hút chích, vứt kim tiêm "
    "ra đường"
)
GAMBLING = (
    "Tối nay ở thị trấn Sịa, Quảng Điền có một nhóm đang đánh bạc ăn tiền trong nhà kho sau "
    "chợ, rất đông người"
)


# --------------------------------------------------------------------------- helpers


def phone() -> str:
    """A Vietnamese mobile number in E.164, unique enough for one test run."""
    return "+849" + "".join(secrets.choice("0123456789") for _ in range(8))


def same_address(a: str, b: str) -> bool:
    """Provider addresses compare by their digits' tail for phones (+84... vs 0...)."""
    da, db = re.sub(r"\D", "", a), re.sub(r"\D", "", b)
    if da and db and da == re.sub(r"\W", "", a) and db == re.sub(r"\W", "", b):
        return da[-9:] == db[-9:]
    return a.strip("+") == b.strip("+")


def addressed_to(message: dict[str, Any], people: list[Recipient]) -> bool:
    return any(same_address(str(message["to"]), c.address) for p in people for c in p.contacts)


async def decisions_for(db: MotorDatabase, address: str) -> list[DispatchDecision]:
    """Every decision the dispatcher stored for a citizen's messages (as it published them)."""
    found: list[DispatchDecision] = []
    async for doc in db["decisions"].find({}):
        reporter = doc.get("reporter") or {}
        if address not in (reporter.get("address"), reporter.get("phone")):
            continue
        for out in doc.get("outputs") or ():
            if str(out["topic"]).endswith("hotline.dispatched.v1"):
                found.append(DispatchDecision.model_validate_json(out["value"]))
    return sorted(found, key=lambda d: d.received_at)


async def wait_decisions(db: MotorDatabase, address: str, count: int) -> list[DispatchDecision]:
    async def probe() -> list[DispatchDecision] | None:
        got = await decisions_for(db, address)
        return got if len(got) >= count else None

    found = await eventually(probe, timeout_s=45)
    assert found is not None, f"no {count} decision(s) for {address} within 45 s"
    return found


async def receipt_case_id(sandbox: SandboxClient, address: str) -> str:
    """The case reference the citizen was sent (their receipt names it)."""

    async def probe() -> list[dict[str, Any]]:
        return [m for m in await sandbox.messages(contains="HUE-") if _to(m, address)]

    got = await eventually(probe, timeout_s=45)
    assert got, f"no receipt with a case reference reached {address}"
    match = CASE_ID.search(got[0]["text"])
    assert match is not None, got[0]["text"]
    return match.group(0)


async def alerts_for(sandbox: SandboxClient, case_id: str) -> list[dict[str, Any]]:
    """Level-0 alerts of a case: only the alert template carries "OK <case id>" (the reply
    that acknowledges it); escalations, informs and citizen replies do not."""
    return [
        m
        for m in await sandbox.messages(contains=f"OK {case_id}")
        if re.search(rf"OK {re.escape(case_id)}\b", m["text"])
    ]


async def settled(sandbox: SandboxClient, seconds: float = 3.0) -> None:
    """Let late duplicates (if any) arrive before counting: wait until the sandbox is quiet."""
    last = -1
    while True:
        count = int((await sandbox.stats())["messages"])
        if count == last:
            return
        last = count
        await asyncio.sleep(seconds)


async def timeline_until(
    ops: OpsClient, case_id: str, done: Any, timeout_s: float = 30.0
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        case = await ops.case(case_id)
        return case if done(case) else None

    case = await eventually(probe, timeout_s=timeout_s)
    assert case is not None, f"{case_id}: expected state not reached:\n{await ops.case(case_id)}"
    return case


def types_of(case: dict[str, Any]) -> list[str]:
    return [e["type"] for e in case["timeline"]]


def deliveries_of(case: dict[str, Any], purpose: str) -> list[dict[str, Any]]:
    return [
        e["data"]
        for e in case["timeline"]
        if e["type"] == "delivery" and e["data"].get("purpose") == purpose
    ]


# --------------------------------------------------------------------------- tests


async def test_signed_report_reaches_the_officer_and_the_case_file(
    samples: Samples,
    provider: ProviderClient,
    sandbox: SandboxClient,
    ops: dict[str, OpsClient],
    db: MotorDatabase,
) -> None:
    citizen = zalo_id()
    answer = await provider.post(samples.zalo(text=THEFT, user_id=citizen), retry=False)
    assert answer.status == 200, answer
    assert answer.body == {"status": "ok", "accepted": 1, "duplicates": 0, "ignored": 0}

    case_id = await receipt_case_id(sandbox, citizen)
    (decision,) = await wait_decisions(db, citizen, 1)
    assert decision.action == DispatchAction.NEW_CASE and decision.alert
    assert decision.case_id == case_id
    assert decision.assignee is not None
    level0 = decision.escalation[0].recipients
    assert decision.assignee.person_id in {r.person_id for r in level0}

    alerts = await sandbox.wait(len(level0), timeout_s=30, contains=f"OK {case_id}")
    assert len(alerts) == len(level0) and all(addressed_to(m, level0) for m in alerts), alerts
    link = ACK_URL.search(alerts[0]["text"])
    assert link is not None, alerts[0]["text"]
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(link.group(0))
    assert resp.status_code == 200, resp.text

    case = await timeline_until(
        ops["director"], case_id, lambda c: c["state"] == "acknowledged" and len(c["timeline"]) >= 6
    )
    assert case["category"] == decision.category.value
    assert case["priority"] == decision.priority.value
    assert case["assignee"]["person_id"] == decision.assignee.person_id
    assert [r["event_id"] for r in case["reports"]] == [decision.event_id]
    assert case["reports"][0]["action"] == "new_case"
    assert case["reporter"]["address"] == citizen  # the Director may see the reporter
    types = types_of(case)
    for expected in ("opened", "triaged", "assigned", "delivery", "acknowledged"):
        assert expected in types, types
    assert types.index("opened") < types.index("triaged") < types.index("assigned")
    alert = deliveries_of(case, "alert")
    assert [d["status"] for d in alert] == ["sent"] and alert[0]["first_alert"], alert
    assert [d["status"] for d in deliveries_of(case, "citizen_receipt")] == ["sent"]
    acked = next(e for e in case["timeline"] if e["type"] == "acknowledged")
    assert acked["actor"]["id"] == alerts[0]["to"] or acked["actor"]["id"] in {
        r.person_id for r in level0
    }

    await settled(sandbox)
    assert len(await alerts_for(sandbox, case_id)) == len(level0)
    receipts = await sandbox.messages(to=citizen)
    assert len(receipts) == 1 and case_id in receipts[0]["text"], receipts


async def test_unacknowledged_p1_escalates_to_the_director_who_takes_it(
    samples: Samples,
    provider: ProviderClient,
    sandbox: SandboxClient,
    ops: dict[str, OpsClient],
    db: MotorDatabase,
) -> None:
    citizen = zalo_id()
    assert (await provider.post(samples.zalo(text=KNIFE, user_id=citizen))).published
    case_id = await receipt_case_id(sandbox, citizen)
    (decision,) = await wait_decisions(db, citizen, 1)
    assert decision.priority.value == "P1", decision.reasons
    chain = sorted(decision.escalation, key=lambda lvl: lvl.level)
    assert [lvl.role for lvl in chain][-1] == Role.DIRECTOR and len(chain) >= 3, chain

    # Each level above the officer is alerted in turn, the Director last.
    for level in chain[1:]:

        async def reached(people: list[Recipient] = level.recipients) -> list[dict[str, Any]]:
            found = await sandbox.messages(contains=case_id)
            return [m for m in found if addressed_to(m, people) and "OK " not in m["text"]]

        got = await eventually(reached, timeout_s=40)
        assert got, f"level {level.level} ({level.role}) of {case_id} was never alerted"

    case = await timeline_until(
        ops["director"],
        case_id,
        lambda c: sum(t == "escalated" for t in types_of(c)) >= len(chain) - 1,
    )
    levels = [int(e["data"]["level"]) for e in case["timeline"] if e["type"] == "escalated"]
    assert levels[: len(chain) - 1] == [lvl.level for lvl in chain[1:]], levels
    assert case["acknowledged_at"] is None

    director = ops["director"]
    resp = await director.post(f"/cases/{case_id}/acknowledge", {"note": "Tôi trực tiếp chỉ đạo"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "acknowledged"
    directive = "Công an TP Huế khẩn trương truy bắt nhóm đối tượng, báo cáo kết quả trước 17 giờ"
    resp = await director.post(
        f"/cases/{case_id}/directives", {"text": directive, "due_in_minutes": 240}
    )
    assert resp.status_code == 201, resp.text

    # The directive goes to the responsible unit's commander and the assignee.
    got = await sandbox.wait(2, timeout_s=30, contains="truy bắt nhóm đối tượng")
    assert len(got) >= 2 and all(case_id in m["text"] for m in got), got
    case = await timeline_until(
        director, case_id, lambda c: "directive_added" in types_of(c) and c["directives"]
    )
    assert case["acknowledged_by"]["id"] == "director", case["acknowledged_by"]

    # Acknowledged: the escalation stopped (no new escalation after two more timeouts).
    escalations = [e for e in case["timeline"] if e["type"] == "escalated"]
    await asyncio.sleep(2 * ESCALATION_TIMEOUTS_S["P1"] + 1)
    later = await director.case(case_id)
    assert [e for e in later["timeline"] if e["type"] == "escalated"] == escalations


async def test_duplicate_delivery_is_one_event_one_case_one_alert(
    pipeline: Pipeline,
    topic_names: TopicNames,
    samples: Samples,
    provider: ProviderClient,
    sandbox: SandboxClient,
    db: MotorDatabase,
) -> None:
    """A provider delivering the same message twice, and twice more at the same moment, on
    three channels: one event, one decision, one case, one alert, one receipt each (three
    different incidents, none like another test's, so none is merged)."""
    zalo_user, sms_phone, wa_phone = zalo_id(), phone(), phone()
    deliveries = {
        zalo_user: samples.zalo(text=SCAM, user_id=zalo_user),
        sms_phone: samples.twilio_sms(body=GAMBLING, from_=sms_phone),
        wa_phone: samples.whatsapp(
            messages=[samples.whatsapp_message(wa_id=wa_phone.lstrip("+"), text=DRUGS)]
        ),
    }
    for address, delivery in deliveries.items():
        first = await provider.post(delivery)
        second = await provider.post(delivery)
        both = await asyncio.gather(provider.post(delivery), provider.post(delivery))
        answers = [first, second, *both]
        assert all(a.ok for a in answers), (address, answers)
        if isinstance(first.body, dict):  # Twilio answers TwiML, the others count
            bodies = [a.body for a in answers if isinstance(a.body, dict)]
            assert sum(int(b["accepted"]) for b in bodies) == 1, (address, bodies)
            assert sum(int(b["duplicates"]) for b in bodies) == 3, (address, bodies)

    case_ids = {address: await receipt_case_id(sandbox, address) for address in deliveries}
    assert len(set(case_ids.values())) == 3, case_ids
    await settled(sandbox)

    inbound = await read_topic(pipeline.kafka_bootstrap, topic_names.inbound, timeout_s=5)
    triaged = await read_topic(pipeline.kafka_bootstrap, topic_names.triaged, timeout_s=5)
    for address, case_id in case_ids.items():
        decisions = await decisions_for(db, address)
        assert len(decisions) == 1, decisions
        (decision,) = decisions
        assert decision.action == DispatchAction.NEW_CASE and decision.case_id == case_id
        event_ids_in = {_event_id(r.value) for r in inbound if address.lstrip("+") in _sender(r)}
        event_ids_tr = {_event_id(r.value) for r in triaged if address.lstrip("+") in _sender(r)}
        assert event_ids_in == event_ids_tr == {decision.event_id}, (event_ids_in, event_ids_tr)
        opened = await db["cases"].count_documents({"opened_by": decision.event_id})
        assert opened == 1
        level0 = decision.escalation[0].recipients
        assert len(await alerts_for(sandbox, case_id)) == len(level0), case_id
        receipts = [m for m in await sandbox.messages(contains=case_id) if _to(m, address)]
        assert len(receipts) == 1, receipts


async def test_two_citizens_reporting_one_incident_make_one_case_one_alert_two_receipts(
    samples: Samples,
    provider: ProviderClient,
    sandbox: SandboxClient,
    ops: dict[str, OpsClient],
    db: MotorDatabase,
) -> None:
    first, second = phone(), "vb" + secrets.token_hex(8) + "=="
    assert (await provider.post(samples.twilio_sms(body=FIRE_1, from_=first))).published
    case_id = await receipt_case_id(sandbox, first)
    answer = await provider.post(samples.viber(text=FIRE_2, sender_id=second, name="Phan Van Tam"))
    assert answer.published, answer
    assert await receipt_case_id(sandbox, second) == case_id

    (opened,) = await wait_decisions(db, first, 1)
    (joined,) = await wait_decisions(db, second, 1)
    assert opened.action == DispatchAction.NEW_CASE
    assert joined.action == DispatchAction.MERGED, joined.reasons
    assert joined.case_id == case_id

    case = await timeline_until(ops["director"], case_id, lambda c: len(c["reports"]) == 2)
    assert {r["event_id"] for r in case["reports"]} == {opened.event_id, joined.event_id}
    assert sorted(r["action"] for r in case["reports"]) == ["merged", "new_case"]

    await settled(sandbox)
    assert len(await alerts_for(sandbox, case_id)) == len(opened.escalation[0].recipients)
    receipts = [m for m in await sandbox.messages(contains=case_id) if "HUE-" in m["text"]]
    to_first = [m for m in receipts if _to(m, first)]
    to_second = [m for m in receipts if _to(m, second)]
    assert len(to_first) == 1 and len(to_second) == 1, receipts
    assert (await db["cases"].count_documents({"opened_by": joined.event_id})) == 0


async def test_receipt_then_closure_notice_to_every_reporter(
    samples: Samples,
    provider: ProviderClient,
    sandbox: SandboxClient,
    ops: dict[str, OpsClient],
    db: MotorDatabase,
) -> None:
    first, second = zalo_id(), phone()
    assert (await provider.post(samples.zalo(text=CRASH_1, user_id=first))).published
    case_id = await receipt_case_id(sandbox, first)
    wa = samples.whatsapp(
        messages=[samples.whatsapp_message(wa_id=second.lstrip("+"), text=CRASH_2)], name="Vo Duc"
    )
    assert (await provider.post(wa)).published
    assert await receipt_case_id(sandbox, second) == case_id
    (opened,) = await wait_decisions(db, first, 1)

    # The unit's officer resolves it with an outcome; every reporter is told it is closed.
    officer = ops["director"]
    resp = await officer.post(
        f"/cases/{case_id}/resolve", {"outcome": "Đã đưa người bị nạn đi cấp cứu, phân luồng xong"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "resolved"

    async def closures() -> list[dict[str, Any]] | None:
        # In words on both: the WhatsApp citizen wrote minutes ago, inside the 24-hour session
        # (`Reporter.last_message_at`), so no template stands in for the text.
        found = [
            m
            for m in await sandbox.messages(contains=case_id)
            if "đã được xử lý xong" in m["text"] or "has been resolved" in m["text"]
        ]
        return found if len(found) >= 2 else None

    assert await eventually(closures, timeout_s=30), "closure notices did not arrive"
    await settled(sandbox)
    found = await closures()
    assert found is not None
    assert sorted(_who(m, first, second) for m in found) == ["first", "second"], found
    case = await timeline_until(officer, case_id, lambda c: "resolved" in types_of(c))
    assert case["outcome"].startswith("Đã đưa người bị nạn")
    assert len(deliveries_of(case, "citizen_closure")) >= 1
    assert len(await alerts_for(sandbox, case_id)) == len(opened.escalation[0].recipients)


async def test_missed_call_becomes_a_callback_task_for_the_staff_office(
    samples: Samples,
    provider: ProviderClient,
    sandbox: SandboxClient,
    ops: dict[str, OpsClient],
    db: MotorDatabase,
) -> None:
    caller = phone()
    answer = await provider.post(samples.twilio_voice(call_status="no-answer", from_=caller))
    assert answer.ok, answer

    (decision,) = await wait_decisions(db, caller, 1)
    assert decision.action == DispatchAction.CALLBACK, decision.reasons
    assert decision.case_id is not None
    assert decision.responsible_unit == "pv01"  # the Staff Office (Phòng Tham mưu)
    assignee = decision.assignee
    assert assignee is not None and assignee.role == Role.CALL_TAKER, assignee
    assert assignee.unit_id == "pv01" and assignee.may_see_reporter
    assert decision.reporter.phone is not None and same_address(decision.reporter.phone, caller)

    tasks = await sandbox.wait(1, timeout_s=30, contains=decision.case_id)
    tasks = [m for m in tasks if addressed_to(m, [assignee])]
    assert len(tasks) == 1, tasks
    assert caller in tasks[0]["text"], "the call-taker needs the number to call back"

    case = await ops["staff"].case(decision.case_id)
    assert case["kind"] == "callback" and case["assignee"]["role"] == "call_taker"
    resp = await ops["call_taker"].post(
        f"/cases/{decision.case_id}/callback-done",
        {"reached": True, "note": "Đã gọi lại, người dân báo nhầm số"},
    )
    assert resp.status_code == 200, resp.text
    case = await timeline_until(
        ops["staff"], decision.case_id, lambda c: "callback_done" in types_of(c)
    )
    assert case["callback"] is not None, case
    await settled(sandbox)
    tasks = [
        m for m in await sandbox.messages(contains=decision.case_id) if addressed_to(m, [assignee])
    ]
    assert len(tasks) == 1, tasks


# --------------------------------------------------------------------------- small readers


def _event_id(value: bytes | None) -> str:
    import json

    return str(json.loads(value or b"{}")["event_id"])


def _sender(record: Any) -> str:
    import json

    sender = json.loads(record.value or b"{}").get("sender") or {}
    return " ".join(str(v) for v in sender.values() if v)


def _to(message: dict[str, Any], address: str) -> bool:
    return same_address(str(message["to"]), address)


def _who(message: dict[str, Any], first: str, second: str) -> str:
    if _to(message, first):
        return "first"
    if _to(message, second):
        return "second"
    return f"someone else: {message['to']}"
