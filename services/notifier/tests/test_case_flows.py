"""Citizen replies and the case events the notifier reacts to (resolve, reassign, directives)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hotline.clock import ManualClock
from hotline.contracts import example
from hotline.contracts.events import CaseEvent, DeliveryStatus
from hotline_notifier.metrics import CITIZEN_REPLIES
from hotline_notifier.models import AlertStatus
from hotline_sandbox.server import SandboxHandle

from .conftest import NotifierFactory, decision, outcomes

pytestmark = pytest.mark.integration


def greeting(n: int, **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "decision_id": f"dec-greet-{n}",
        "event_id": f"greet-{n}",
        "action": "greeting",
        "case_id": None,
        "category": "greeting",
        "priority": "P4",
        "alert": False,
        "assignee": None,
        "escalation": [],
        "informed": [],
        "citizen_reply": "courtesy",
        "reporter": {"channel": "viber", "address": "aB3dE5fG7hI9jK1l==", "language": "vi"},
    }
    fields.update(changes)
    return decision(**fields)


def case_event(**changes: Any) -> CaseEvent:
    data = example("CaseEvent")
    data.update(source="dispatcher", data={})
    data.update(changes)
    return CaseEvent.model_validate(data)


async def test_greeting_gets_the_directors_courtesy_reply_once_a_day(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier()
    before = CITIZEN_REPLIES.labels("courtesy", "viber")._value.get()
    outs = await n.handlers.handle_decision(greeting(1))
    [sent] = sandbox.sandbox.store.messages()
    assert (sent.provider, sent.to) == ("viber", "aB3dE5fG7hI9jK1l==")
    assert "Rất vui lòng nhận tin phản ánh của anh, chị" in sent.text
    assert outcomes(outs)[0].purpose.value == "citizen_courtesy"
    assert CITIZEN_REPLIES.labels("courtesy", "viber")._value.get() == before + 1
    # Same citizen, same day, another greeting (even if the dispatcher asked again): suppressed.
    again = outcomes(await n.handlers.handle_decision(greeting(2)))
    assert [o.status for o in again] == [DeliveryStatus.SUPPRESSED]
    # A redelivery of the first greeting is not "another" courtesy: it replays, sends nothing.
    await n.handlers.handle_decision(greeting(1))
    assert len(sandbox.sandbox.store.messages()) == 1
    clock.advance(timedelta(days=1))
    await n.handlers.handle_decision(greeting(3))
    assert len(sandbox.sandbox.store.messages()) == 2


async def test_receipt_in_english_for_an_english_report_from_a_voice_caller(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier()
    d = decision(
        informed=[],
        alert=False,
        reporter={"channel": "voice", "phone": "+84912345678", "language": "en"},
    )
    await n.handlers.handle_decision(d)
    [sms] = sandbox.sandbox.store.messages()
    assert (sms.provider, sms.to) == ("twilio", "+84912345678")
    assert "reference HUE-20240124-0042" in sms.text


async def test_a_citizen_without_an_address_is_counted_not_answered(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier()
    outs = await n.handlers.handle_decision(
        decision(informed=[], alert=False, reporter={"channel": "web"})
    )
    assert sandbox.sandbox.store.messages() == []
    [o] = outcomes(outs)
    assert (o.status.value, o.purpose.value, o.channel) == ("suppressed", "citizen_receipt", "none")


async def test_resolution_stops_reminders_and_sends_every_reporter_the_closure(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier()
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    resolved = case_event(
        event_id="evt-resolved",
        type="resolved",
        reporters=[
            {"channel": "zalo", "address": "8800112233445566", "language": "vi"},
            {"channel": "voice", "phone": "+84912345678", "language": "en"},
        ],
    )
    outs = await n.handlers.handle_case_event(resolved)
    closures = sandbox.sandbox.store.messages()[1:]
    assert sorted((m.provider, m.to) for m in closures) == [
        ("twilio", "+84912345678"),
        ("zalo", "8800112233445566"),
    ]
    zalo = next(m for m in closures if m.provider == "zalo")
    assert "đã được xử lý xong" in zalo.text and "HUE-20240124-0042" in zalo.text
    assert {o.purpose.value for o in outcomes(outs)} == {"citizen_closure"}
    clock.advance(timedelta(hours=3))
    await n.engine.tick()
    assert len(sandbox.sandbox.store.messages()) == 3  # no escalation, no reminder
    state = await n.repo.get_alert("HUE-20240124-0042")
    assert state is not None and state.status == AlertStatus.RESOLVED
    # Redelivered: no second closure notice.
    await n.handlers.handle_case_event(resolved)
    assert len(sandbox.sandbox.store.messages()) == 3


async def test_reassignment_restarts_the_chain_for_the_new_assignee(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier()
    d = decision(informed=[], citizen_reply="none")
    await n.handlers.handle_decision(d)
    clock.advance(60)
    new_officer = {
        "person_id": "hue-city-o2",
        "name": "Phạm Văn Cường",
        "role": "officer",
        "unit_id": "ca-tp-hue",
        "contacts": [{"channel": "telegram", "address": "555000111"}],
    }
    chain = [dict(lvl.model_dump(mode="json")) for lvl in d.escalation]
    chain[0]["recipients"] = [new_officer]
    chain[0]["timeout_s"] = 300
    event = case_event(
        event_id="evt-reassigned", type="reassigned", recipients=[new_officer], escalation=chain
    )
    await n.handlers.handle_case_event(event)
    assert sandbox.sandbox.store.messages()[-1].to == "555000111"
    state = await n.repo.get_alert("HUE-20240124-0042")
    assert state is not None and state.cycle == 1 and state.level == 0
    # The old chain's timer (due at +120 s) does not fire; the new one waits its 300 s.
    clock.advance(100)
    assert (await n.engine.tick()).escalated == 0
    clock.advance(200)
    assert (await n.engine.tick()).escalated == 1
    assert sandbox.sandbox.store.messages()[-1].to == "+84905111000"
    # Redelivery of the reassignment: no new cycle, nothing sent again.
    await n.handlers.handle_case_event(event)
    state = await n.repo.get_alert("HUE-20240124-0042")
    assert state is not None and state.cycle == 1
    assert len(sandbox.sandbox.store.messages(to="555000111")) == 1


async def test_a_reopened_case_alerts_its_assignee_again_and_escalates_anew(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier()
    d = decision(informed=[], citizen_reply="none")
    await n.handlers.handle_decision(d)
    first = d.escalation[0].recipients[0].contacts[0].address
    await n.handlers.handle_case_event(
        case_event(event_id="evt-resolved", type="resolved", recipients=[], escalation=[])
    )
    state = await n.repo.get_alert("HUE-20240124-0042")
    assert state is not None and state.status == AlertStatus.RESOLVED
    alerts_before = len(sandbox.sandbox.store.messages(to=first))

    clock.advance(3600)
    chain = [dict(lvl.model_dump(mode="json")) for lvl in d.escalation]
    reopened = case_event(
        event_id="evt-reopened",
        type="reopened",
        text="Người dân báo đối tượng quay lại",
        recipients=chain[0]["recipients"],
        escalation=chain,
    )
    await n.handlers.handle_case_event(reopened)
    assert len(sandbox.sandbox.store.messages(to=first)) == alerts_before + 1
    state = await n.repo.get_alert("HUE-20240124-0042")
    assert state is not None
    assert (state.status, state.cycle, state.level) == (AlertStatus.ALERTING, 1, 0)
    # Nobody acknowledges: the new cycle escalates after level 0's timeout.
    clock.advance(chain[0]["timeout_s"] + 1)
    assert (await n.engine.tick()).escalated == 1
    # Redelivered: no third cycle, no second alert.
    await n.handlers.handle_case_event(reopened)
    state = await n.repo.get_alert("HUE-20240124-0042")
    assert state is not None and state.cycle == 1
    assert len(sandbox.sandbox.store.messages(to=first)) == alerts_before + 1


async def test_a_greeting_corrected_into_a_case_gets_its_receipt_and_its_alert_shows_the_reporter(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier()
    citizen = {"channel": "viber", "address": "aB3dE5fG7hI9jK1l==", "language": "vi"}
    d = decision()
    chain = [dict(lvl.model_dump(mode="json")) for lvl in d.escalation]
    opened = case_event(
        event_id="evt-opened-corrected",
        type="opened",
        recipients=[],
        escalation=[],
        reporters=[citizen],
        data={"corrected_from": "greeting", "event_id": "greet-9"},
    )
    outs = outcomes(await n.handlers.handle_case_event(opened))
    [receipt] = sandbox.sandbox.store.messages(to=citizen["address"])
    assert "HUE-20240124-0042" in receipt.text
    assert [(o.purpose.value, o.status) for o in outs] == [("citizen_receipt", DeliveryStatus.SENT)]
    # Redelivered: no second receipt.
    await n.handlers.handle_case_event(opened)
    assert len(sandbox.sandbox.store.messages(to=citizen["address"])) == 1

    # The `reassigned` event that starts the new case's chain carries the reporter too.
    reassigned = case_event(
        event_id="evt-assign-corrected",
        type="reassigned",
        recipients=chain[0]["recipients"],
        escalation=chain,
        reporters=[citizen],
        data={"corrected_from": "greeting"},
    )
    await n.handlers.handle_case_event(reassigned)
    state = await n.repo.get_alert("HUE-20240124-0042")
    assert state is not None and state.reporter.address == citizen["address"]
    # An ordinary `opened` event (the dispatcher's own cases) sends nothing.
    before = len(sandbox.sandbox.store.messages())
    await n.handlers.handle_case_event(
        case_event(event_id="evt-opened-plain", type="opened", recipients=[], escalation=[])
    )
    assert len(sandbox.sandbox.store.messages()) == before


async def test_directives_and_overdue_report_backs_are_sent(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier()
    commander = example("DispatchDecision")["escalation"][1]["recipients"][0]
    directive = case_event(
        event_id="evt-directive",
        type="directive_added",
        text="Khẩn trương xác minh, báo cáo kết quả",
        deadline="2024-01-24T10:00:00Z",
        recipients=[commander],
        data={"directive_id": "HUE-20240124-0042-CD1", "issued_by": "director"},
    )
    await n.handlers.handle_case_event(directive)
    due = case_event(
        event_id="evt-due",
        type="reminder_due",
        text="Khẩn trương xác minh, báo cáo kết quả",
        deadline="2024-01-24T10:00:00Z",
        recipients=[commander],
        data={"directive_id": "HUE-20240124-0042-CD1", "issued_by": "director"},
    )
    outs = await n.handlers.handle_case_event(due)
    # The Staff Office passing one on for the Director (and an event without `issued_by`).
    for event_id, data in (
        ("evt-staff", {"directive_id": "HUE-20240124-0042-CD2", "issued_by": "staff_office"}),
        ("evt-older", {"directive_id": "HUE-20240124-0042-CD3"}),
    ):
        await n.handlers.handle_case_event(
            case_event(
                event_id=event_id,
                type="directive_added",
                text="Bổ sung hồ sơ",
                deadline="2024-01-24T10:00:00Z",
                recipients=[commander],
                data=data,
            )
        )
    first, second, staff, older = sandbox.sandbox.store.messages()
    assert first.to == second.to == "+84905111000"
    assert first.text.startswith("Chỉ đạo của Giám đốc về vụ việc")
    assert "17:00 24/01/2024" in first.text  # local time
    assert "quá hạn" in second.text and "chỉ đạo của Giám đốc" in second.text
    assert staff.text.startswith("Chỉ đạo của Phòng Tham mưu (thừa lệnh Giám đốc) về vụ việc")
    assert older.text.startswith("Chỉ đạo của Phòng Tham mưu (thừa lệnh Giám đốc)")
    assert [o.purpose.value for o in outcomes(outs)] == ["reminder"]


async def test_callback_task_shows_the_callers_number(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier()
    call_taker = {
        "person_id": "pv01-ct1",
        "name": "Hoàng Thị Lan",
        "role": "call_taker",
        "unit_id": "pv01",
        "contacts": [{"channel": "email", "address": "tiepnhan@example.vn"}],
        "may_see_reporter": True,
    }
    d = decision(
        action="callback",
        case_id="HUE-20240124-0050",
        category="other",
        priority="P2",
        alert=True,
        assignee=call_taker,
        escalation=[],
        informed=[],
        citizen_reply="none",
        reporter={"channel": "voice", "phone": "+84912345678"},
    )
    outs = await n.handlers.handle_decision(d)
    [mail] = sandbox.sandbox.store.messages()
    assert mail.to == "tiepnhan@example.vn" and "+84912345678" in mail.text
    assert "Gọi lại" in (mail.subject or "")
    assert outcomes(outs)[0].purpose.value == "callback_task"
