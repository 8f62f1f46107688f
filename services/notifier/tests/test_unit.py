"""Pure units: tokens, templates, escalation transitions, quiet hours, rate limits, masking."""

from __future__ import annotations

import time as systime
from datetime import UTC, datetime, time, timedelta

import pytest

from hotline.contracts.events import Reporter
from hotline.contracts.labels import Channel, Language, Priority
from hotline_notifier.compose import citizen_contacts, reporter_line
from hotline_notifier.escalation import (
    Policy,
    StepKind,
    in_quiet_hours,
    next_step,
    quiet_end_after,
)
from hotline_notifier.models import AlertState, AlertStatus
from hotline_notifier.phones import comparable, e164, is_phone
from hotline_notifier.ratelimit import RateLimited, RateLimiter, replica_share
from hotline_notifier.settings import DEFAULT_TEMPLATES, NotifierSettings, RateLimit
from hotline_notifier.templates import TemplateError, Templates
from hotline_notifier.tokens import AckTokens, RejectReason, TokenRejected

from .conftest import decision

NOW = datetime(2024, 1, 24, 2, 0, tzinfo=UTC)  # 09:00 in Hue
POLICY = Policy(
    quiet_start=time(22, 0),
    quiet_end=time(6, 0),
    quiet_priorities=frozenset({Priority.P3, Priority.P4}),
    reminder_interval=timedelta(hours=1),
    max_reminders=3,
    top_level_repeats=2,
)


def state(**changes: object) -> AlertState:
    d = decision()
    fields: dict[str, object] = {
        "case_id": d.case_id,
        "source_id": d.decision_id,
        "priority": d.priority,
        "category": d.category,
        "reporter": d.reporter,
        "received_at": d.received_at,
        "chain": d.escalation,
        "status": AlertStatus.ALERTING,
        "level": 0,
        "next_due_at": NOW,
        "created_at": NOW - timedelta(minutes=2),
    }
    fields.update(changes)
    return AlertState.model_validate(fields)


# ------------------------------------------------------------------ tokens


def test_token_round_trip_and_rejections() -> None:
    tokens = AckTokens("k" * 32, timedelta(hours=1))
    token = tokens.issue(case_id="HUE-1", cycle=0, level=1, recipient_id="cmd", now=NOW)
    claim = tokens.verify(token, NOW + timedelta(minutes=59))
    assert (claim.case_id, claim.cycle, claim.level, claim.recipient_id) == ("HUE-1", 0, 1, "cmd")

    with pytest.raises(TokenRejected) as expired:
        tokens.verify(token, NOW + timedelta(hours=1, seconds=1))
    assert expired.value.reason == RejectReason.EXPIRED

    other_key = AckTokens("x" * 32, timedelta(hours=1))
    with pytest.raises(TokenRejected) as forged:
        other_key.verify(token, NOW)
    assert forged.value.reason == RejectReason.FORGED

    # Re-signing the payload for another recipient is impossible without the key.
    payload, mac = token.split(".")
    import base64
    import json

    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["r"] = "director"
    edited = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    with pytest.raises(TokenRejected) as tampered:
        tokens.verify(f"{edited}.{mac}", NOW)
    assert tampered.value.reason == RejectReason.FORGED
    for junk in ("", "abc", "a.b.c", "!!!.???"):
        with pytest.raises(TokenRejected):
            tokens.verify(junk, NOW)


def test_tokens_are_unique_per_issue() -> None:
    tokens = AckTokens("k" * 32, timedelta(hours=1))
    a = tokens.issue(case_id="HUE-1", cycle=0, level=0, recipient_id="o1", now=NOW)
    b = tokens.issue(case_id="HUE-1", cycle=0, level=0, recipient_id="o1", now=NOW)
    assert a != b
    assert tokens.verify(a, NOW).nonce != tokens.verify(b, NOW).nonce


# ------------------------------------------------------------------ templates


def test_shipped_templates_are_complete_and_courteous() -> None:
    t = Templates.load(DEFAULT_TEMPLATES)
    courtesy = t.render("citizen_courtesy", "vi", {})
    assert "Rất vui lòng nhận tin phản ánh của anh, chị" in courtesy.text
    receipt = t.render("citizen_receipt", "vi", {"case_id": "HUE-20240124-0042"})
    assert "rất vui lòng nhận tin phản ánh của anh, chị" in receipt.text
    assert "HUE-20240124-0042" in receipt.text
    english = t.render("citizen_receipt", "en", {"case_id": "HUE-1"})
    assert "reference HUE-1" in english.text
    assert t.label("category", "theft", "vi") == "trộm cắp"
    assert t.label("location", None, "en") == "location not known"


def test_templates_reject_unknown_placeholders_and_missing_languages() -> None:
    t = Templates.load(DEFAULT_TEMPLATES)
    data = dict(t.data)
    messages = {k: dict(v) for k, v in data["messages"].items()}
    messages["alert"] = {**messages["alert"], "vi": {"subject": "x", "text": "{phone_number}"}}
    with pytest.raises(TemplateError, match="phone_number"):
        Templates({**data, "messages": messages})
    messages["alert"] = {"vi": t.data["messages"]["alert"]["vi"]}
    with pytest.raises(TemplateError, match="alert/en"):
        Templates({**data, "messages": messages})


def test_empty_field_lines_are_dropped() -> None:
    t = Templates.load(DEFAULT_TEMPLATES)
    text = t.render("alert", "vi", {"case_id": "HUE-1", "reporter": "", "ack_url": ""}).text
    assert "Người báo" not in text
    assert "Xác nhận đã nhận" not in text


# ------------------------------------------------------------------ escalation policy


def test_unacknowledged_alert_climbs_the_chain_then_repeats_the_top() -> None:
    s = state(level=0)
    step = next_step(s, NOW, POLICY, acked_at=None, resolved=False)
    assert (step.kind, step.level) == (StepKind.SEND_LEVEL, 1)
    s = state(level=3)
    step = next_step(s, NOW, POLICY, acked_at=None, resolved=False)
    assert (step.kind, step.level, step.n) == (StepKind.REPEAT_TOP, 3, 1)
    s = state(level=3, repeats=2)
    assert next_step(s, NOW, POLICY, acked_at=None, resolved=False).kind == StepKind.EXHAUST
    s = state(level=-1, status=AlertStatus.DEFERRED)
    step = next_step(s, NOW, POLICY, acked_at=None, resolved=False)
    assert (step.kind, step.level) == (StepKind.SEND_LEVEL, 0)


def test_acknowledged_alert_gets_reminders_not_escalations() -> None:
    acked = NOW - timedelta(minutes=30)
    s = state(status=AlertStatus.ACKNOWLEDGED)
    step = next_step(s, NOW, POLICY, acked_at=acked, resolved=False)
    assert step.kind == StepKind.WAIT and step.due == acked + timedelta(hours=1)
    later = acked + timedelta(hours=1)
    step = next_step(s, later, POLICY, acked_at=acked, resolved=False)
    assert (step.kind, step.n, step.due) == (StepKind.REMIND, 1, acked + timedelta(hours=2))
    s = state(status=AlertStatus.ACKNOWLEDGED, reminders=3)
    step = next_step(s, later + timedelta(hours=9), POLICY, acked_at=acked, resolved=False)
    assert step.kind == StepKind.WAIT and step.due is None
    assert next_step(s, NOW, POLICY, acked_at=acked, resolved=True).kind == StepKind.CLOSE


def test_quiet_hours_hold_p3_but_not_p1() -> None:
    night = datetime(2024, 1, 24, 16, 30, tzinfo=UTC)  # 23:30 in Hue
    assert in_quiet_hours(night, POLICY)
    assert not in_quiet_hours(NOW, POLICY)
    assert in_quiet_hours(datetime(2024, 1, 24, 22, 59, tzinfo=UTC), POLICY)  # 05:59
    assert not in_quiet_hours(datetime(2024, 1, 24, 23, 0, tzinfo=UTC), POLICY)  # 06:00
    end = quiet_end_after(night, POLICY)
    assert end == datetime(2024, 1, 24, 23, 0, tzinfo=UTC)
    p3 = state(priority=Priority.P3)
    step = next_step(p3, night, POLICY, acked_at=None, resolved=False)
    assert (step.kind, step.due) == (StepKind.DEFER, end)
    p1 = state(priority=Priority.P1)
    assert next_step(p1, night, POLICY, acked_at=None, resolved=False).kind == StepKind.SEND_LEVEL


# ------------------------------------------------------------------ rate limits


async def test_rate_limiter_spaces_sends_per_recipient_and_refuses_long_waits() -> None:
    limiter = RateLimiter(
        {
            "telegram": RateLimit(rate=1000, burst=1000),
            "telegram:recipient": RateLimit(rate=10, burst=1),
        },
        max_wait_s=0.5,
    )
    started = systime.monotonic()
    for _ in range(3):
        await limiter.acquire("telegram", "chat-1")
    assert systime.monotonic() - started >= 0.18  # 3 sends to one chat at 10/s
    await limiter.acquire("telegram", "chat-2")  # another chat is not held back
    slow = RateLimiter({"viber:recipient": RateLimit(rate=0.01, burst=1)}, max_wait_s=1)
    await slow.acquire("viber", "u")
    with pytest.raises(RateLimited):
        await slow.acquire("viber", "u")


def test_replicas_share_the_provider_limits() -> None:
    limits = {
        "telegram": RateLimit(rate=30, burst=30),
        "whatsapp:recipient": RateLimit(rate=1 / 6, burst=2),
    }
    assert replica_share(limits, 1) == limits
    share = replica_share(limits, 6)
    assert share["telegram"] == RateLimit(rate=5, burst=5)
    # Six replicas together never exceed the provider's 1 message per 6 s to one user...
    assert share["whatsapp:recipient"].rate * 6 == pytest.approx(1 / 6)
    # ...and a burst below one token would never let a send start.
    assert share["whatsapp:recipient"].burst == 1
    with pytest.raises(ValueError, match="replicas"):
        replica_share(limits, 0)


async def test_each_replica_sends_at_its_share_of_the_limit() -> None:
    """With NOTIFIER_RATE_LIMIT_REPLICAS=4, a replica spaces one chat's sends 4 times as far."""
    settings = NotifierSettings(
        rate_limits={"telegram:recipient": RateLimit(rate=40, burst=1)}, rate_limit_replicas=4
    )
    limiter = RateLimiter(
        replica_share(settings.rate_limits, settings.rate_limit_replicas), max_wait_s=1
    )
    started = systime.monotonic()
    for _ in range(3):
        await limiter.acquire("telegram", "chat-1")
    assert systime.monotonic() - started >= 0.19  # 2 waits at 10/s, not 40/s (0.05 s)


# ------------------------------------------------------------------ citizens and masking


def test_citizens_are_answered_on_their_channel_with_sms_fallback() -> None:
    zalo = Reporter(channel=Channel.ZALO, address="8800112233445566", phone="+84912345678")
    assert [(c.channel, c.address) for c in citizen_contacts(zalo)] == [
        ("zalo", "8800112233445566"),
        ("sms", "+84912345678"),
    ]
    voice = Reporter(channel=Channel.VOICE, phone="+84912345678", language=Language.EN)
    assert [(c.channel, c.address) for c in citizen_contacts(voice)] == [("sms", "+84912345678")]
    assert citizen_contacts(Reporter(channel=Channel.WEB)) == []


def test_reporter_contact_is_masked_unless_the_role_may_see_it() -> None:
    r = Reporter(channel=Channel.SMS, phone="+84912345678", display_name="Nguyễn Văn An")
    assert reporter_line(r, may_see=True) == "Nguyễn Văn An, +84912345678 (sms)"
    masked = reporter_line(r, may_see=False)
    assert "912345678" not in masked and "Nguyễn" not in masked
    assert masked == "N. V. A., +849******78 (sms)"


@pytest.mark.parametrize(
    "spelling", ["0905 111 222", "0905.111.222", "+84 905-111-222", "+84905111222"]
)
def test_one_number_however_it_is_typed(spelling: str) -> None:
    assert is_phone(spelling)
    assert e164(spelling) == "+84905111222"
    assert comparable(spelling) == "84905111222"


@pytest.mark.parametrize("address", ["7700112233445566", "aB3dE5fG7hI9jK1l==", "+84", "0905"])
def test_user_ids_and_fragments_are_not_phone_numbers(address: str) -> None:
    assert not is_phone(address)
    assert comparable(f"  {address} ") == address
