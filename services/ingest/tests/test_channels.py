"""Per channel, on the real broker and database: a delivery signed the provider's way becomes
exactly one normalised event; the same delivery again is answered 2xx and not republished; a
forged or unsigned delivery is refused and nothing is published."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hotline import signatures
from hotline.contracts.events import InboundEvent
from hotline_ingest.samples import Delivery

from .conftest import Ingest, channel_of, metric, tampered, without

pytestmark = pytest.mark.integration


async def exactly_once(ingest: Ingest, delivery: Delivery, status: int = 200) -> InboundEvent:
    """Send a delivery twice (a provider retry): one event on the topic, both answered 2xx."""
    first = await ingest.send(delivery)
    assert first.status_code == status, first.text
    duplicates_before = metric("hotline_ingest_duplicates_total", channel=channel_of(delivery))
    again = await ingest.send(delivery)
    assert again.status_code == status, again.text
    assert metric("hotline_ingest_duplicates_total", channel=channel_of(delivery)) == (
        duplicates_before + 1
    )
    assert await ingest.published_count() == 1
    records = await ingest.records(1)
    assert len(records) == 1
    event = InboundEvent.model_validate_json(records[0].value or b"")
    # The Kafka key keeps one citizen's messages in order.
    assert records[0].key == event.key.encode()
    assert event.received_at.tzinfo is not None
    assert abs((datetime.now(UTC) - event.received_at).total_seconds()) < 60
    assert event.raw and not event.raw_truncated
    return event


async def refused(ingest: Ingest, delivery: Delivery, status: int, reason: str) -> None:
    channel = channel_of(delivery)
    before = metric("hotline_ingest_rejected_total", channel=channel, reason=reason)
    response = await ingest.send(delivery)
    assert response.status_code == status, response.text
    assert response.json()["error"] in ("unauthorized", "forbidden")
    assert metric("hotline_ingest_rejected_total", channel=channel, reason=reason) == before + 1


# --------------------------------------------------------------------------- Zalo


async def test_zalo(ingest: Ingest) -> None:
    delivery = ingest.samples.zalo(
        msg_id="a1b2c3d4e5",
        text="Có người đánh nhau bằng dao ở chợ Đông Ba, cứu với",
        event_name="user_send_location",
        attachments=[
            {
                "type": "location",
                "payload": {"coordinates": {"latitude": "16.4716", "longitude": "107.5880"}},
            },
            {"type": "image", "payload": {"url": "https://zalo.example/p.jpg", "size": 2048}},
        ],
    )
    event = await exactly_once(ingest, delivery)
    assert (event.channel, event.kind, event.provider) == ("zalo", "message", "zalo_oa")
    assert event.provider_message_id == "a1b2c3d4e5"
    assert event.sender.user_id == "8800112233445566" and event.sender.phone is None
    assert event.text == "Có người đánh nhau bằng dao ở chợ Đông Ba, cứu với"
    assert event.location is not None and (event.location.lat, event.location.lon) == (
        16.4716,
        107.588,
    )
    assert [(a.type, a.url, a.size) for a in event.attachments] == [
        ("image", "https://zalo.example/p.jpg", 2048)
    ]
    assert event.occurred_at == datetime(2024, 6, 10, 6, 13, 20, 123000, tzinfo=UTC)
    assert event.provider_ids["app_id"] == "1234567890123456789"
    assert event.provider_ids["oa_id"] == "5577889900112233"
    assert event.key == "zalo:8800112233445566"
    assert event.raw == delivery.body.decode()

    await refused(ingest, tampered(delivery, b"dao", b"gao"), 401, "bad_signature")
    await refused(ingest, without(delivery, signatures.ZALO_HEADER), 401, "missing_signature")
    # The signature without its "mac=" prefix is accepted too (a duplicate here).
    bare = delivery.headers[signatures.ZALO_HEADER].removeprefix("mac=")
    again = await ingest.send(delivery.with_headers(**{signatures.ZALO_HEADER: bare}))
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    assert await ingest.published_count() == 1


async def test_a_desk_client_names_the_person_who_logged_the_call(ingest: Ingest) -> None:
    named = ingest.samples.desk(summary_id="cs-2024-0124-0002", logged_for="pv01-ct1")
    assert (await ingest.send(named)).status_code == 202
    [event] = await ingest.events(1)
    assert event.logged_by == "pv01-ct1"
    assert event.call is not None and event.call.agent == "pv01-ct1"
    bad = ingest.samples.desk(summary_id="cs-2024-0124-0003", logged_for="Nguyễn Văn A")
    answer = await ingest.send(bad)
    assert answer.status_code == 422 and "logged_for" in answer.text


async def test_zalo_non_message_events_are_acknowledged_and_counted(ingest: Ingest) -> None:
    before = metric(
        "hotline_ingest_ignored_events_total", channel="zalo", event="user_seen_message"
    )
    seen = ingest.samples.zalo(event_name="user_seen_message")
    response = await ingest.send(seen)
    assert response.status_code == 200 and response.json()["ignored"] == 1
    unknown = await ingest.send(ingest.samples.zalo(event_name="brand_new_event"))
    assert unknown.status_code == 200
    assert metric(
        "hotline_ingest_ignored_events_total", channel="zalo", event="user_seen_message"
    ) == (before + 1)
    assert metric("hotline_ingest_ignored_events_total", channel="zalo", event="other") >= 1
    assert await ingest.published_count() == 0


# --------------------------------------------------------------------------- Viber


async def test_viber(ingest: Ingest) -> None:
    token = 5466394919049723652  # beyond 2^53: must survive as text
    delivery = ingest.samples.viber(message_token=token, text="Báo tin khẩn")
    event = await exactly_once(ingest, delivery)
    assert (event.channel, event.kind, event.provider) == ("viber", "message", "viber")
    assert event.provider_message_id == "5466394919049723652"
    assert event.sender.user_id == "aB3dE5fG7hI9jK1l=="
    assert event.sender.display_name == "Nguyen A"
    assert event.language_hint == "vi"
    assert event.text == "Báo tin khẩn"
    assert event.occurred_at == datetime(2024, 6, 10, 6, 13, 20, 123000, tzinfo=UTC)

    await refused(ingest, tampered(delivery, "khẩn".encode(), b"xx"), 401, "bad_signature")
    await refused(ingest, without(delivery, signatures.VIBER_HEADER), 401, "missing_signature")
    assert await ingest.published_count() == 1


async def test_viber_webhook_handshake_and_receipts_are_answered_not_published(
    ingest: Ingest,
) -> None:
    before = metric("hotline_ingest_ignored_events_total", channel="viber", event="webhook")
    handshake = await ingest.send(ingest.samples.viber(event="webhook"))
    assert handshake.status_code == 200
    assert metric("hotline_ingest_ignored_events_total", channel="viber", event="webhook") == (
        before + 1
    )
    for event in ("delivered", "seen", "subscribed", "conversation_started"):
        assert (await ingest.send(ingest.samples.viber(event=event))).status_code == 200
    assert await ingest.published_count() == 0


async def test_viber_media_and_location(ingest: Ingest) -> None:
    picture = ingest.samples.viber(
        message={
            "type": "picture",
            "text": "ảnh hiện trường",
            "media": "https://viber.example/img.jpg",
            "size": 1234,
            "file_name": "img.jpg",
        }
    )
    assert (await ingest.send(picture)).status_code == 200
    place = ingest.samples.viber(
        message={"type": "location", "location": {"lat": 16.46, "lon": 107.59}}
    )
    assert (await ingest.send(place)).status_code == 200
    first, second = await ingest.events(2)
    assert [(a.type, a.url, a.size, a.name) for a in first.attachments] == [
        ("image", "https://viber.example/img.jpg", 1234, "img.jpg")
    ]
    assert first.text == "ảnh hiện trường"
    assert second.location is not None and second.location.lat == 16.46 and second.text == ""


# --------------------------------------------------------------------------- WhatsApp


async def test_whatsapp_batched_entries_each_message_once(ingest: Ingest) -> None:
    first = ingest.samples.whatsapp_message(wamid="wamid.ONE", text="Có trộm")
    second = ingest.samples.whatsapp_message(
        wamid="wamid.TWO",
        type="location",
        location={"latitude": 16.45, "longitude": 107.56, "name": "Chợ Đông Ba"},
        timestamp_s=1_718_000_060,
    )
    status = {"id": "wamid.OUT", "status": "delivered", "timestamp": "1718000001"}
    delivery = ingest.samples.whatsapp(messages=[first, second], statuses=[status])
    ignored_before = metric(
        "hotline_ingest_ignored_events_total", channel="whatsapp", event="status"
    )

    response = await ingest.send(delivery)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "accepted": 2, "duplicates": 0, "ignored": 1}
    again = await ingest.send(delivery)
    assert again.json() == {"status": "ok", "accepted": 0, "duplicates": 2, "ignored": 1}
    # A later batch repeating one message plus a new one publishes only the new one.
    third = ingest.samples.whatsapp_message(wamid="wamid.THREE", text="Cứu")
    mixed = await ingest.send(ingest.samples.whatsapp(messages=[second, third]))
    assert mixed.json()["accepted"] == 1 and mixed.json()["duplicates"] == 1
    assert await ingest.published_count() == 3
    assert metric("hotline_ingest_ignored_events_total", channel="whatsapp", event="status") == (
        ignored_before + 2
    )

    events = {e.provider_message_id: e for e in await ingest.events(3)}
    one = events["wamid.ONE"]
    assert (one.channel, one.kind, one.provider) == ("whatsapp", "message", "whatsapp_cloud")
    assert one.sender.phone == "+84912345678" and one.sender.user_id == "84912345678"
    assert one.sender.display_name == "Tran B"
    assert one.text == "Có trộm"
    assert one.occurred_at == datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)
    assert one.provider_ids["phone_number_id"] == "109876543210"
    two = events["wamid.TWO"]
    assert two.location is not None and two.location.lat == 16.45
    assert two.text == "Chợ Đông Ba"
    assert one.key == two.key == "whatsapp:84912345678"


async def test_whatsapp_signature(ingest: Ingest) -> None:
    delivery = ingest.samples.whatsapp()
    await refused(ingest, tampered(delivery, "trộm".encode(), b"xx"), 401, "bad_signature")
    await refused(ingest, without(delivery, signatures.WHATSAPP_HEADER), 401, "missing_signature")
    # Signed with the verify token instead of the App Secret: refused.
    verify_token = ingest.settings.whatsapp_verify_token.get_secret_value()
    wrong_key = signatures.whatsapp_signature(delivery.body, verify_token)
    await refused(
        ingest,
        delivery.with_headers(**{signatures.WHATSAPP_HEADER: wrong_key}),
        401,
        "bad_signature",
    )
    assert await ingest.published_count() == 0
    await exactly_once(ingest, delivery)


async def test_whatsapp_verification_handshake(ingest: Ingest) -> None:
    token = ingest.settings.whatsapp_verify_token.get_secret_value()
    ok = await ingest.client.get(
        "/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": token},
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")
    before = metric("hotline_ingest_rejected_total", channel="whatsapp", reason="unauthorized")
    for params in (
        {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "wrong"},
        {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": token},
        {},
    ):
        denied = await ingest.client.get("/webhooks/whatsapp", params=params)
        assert denied.status_code == 403
    assert metric("hotline_ingest_rejected_total", channel="whatsapp", reason="unauthorized") == (
        before + 3
    )


# --------------------------------------------------------------------------- Telegram


async def test_telegram(ingest: Ingest) -> None:
    delivery = ingest.samples.telegram(
        update_id=918273645,
        text=None,
        message={
            "caption": "Xe máy bị lấy trộm",
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "width": 90, "file_size": 900},
                {"file_id": "large", "file_unique_id": "l", "width": 1280, "file_size": 90000},
            ],
            "contact": {"phone_number": "84912345678", "first_name": "Lan", "user_id": 7001002003},
        },
    )
    event = await exactly_once(ingest, delivery)
    assert (event.channel, event.kind, event.provider) == ("telegram", "message", "telegram")
    assert event.provider_message_id == "918273645"
    # The user shared their own contact: the phone is known (Telegram omits the "+").
    assert event.sender.phone == "+84912345678"
    assert event.sender.user_id == "7001002003" and event.sender.display_name == "Lan Nguyen"
    assert event.text == "Xe máy bị lấy trộm"
    assert [(a.type, a.name, a.size) for a in event.attachments] == [
        ("image", "large", 90000),
        ("contact", "Lan", None),
    ]
    assert event.occurred_at == datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)
    assert event.provider_ids["chat_id"] == "7001002003"

    forged = delivery.with_headers(**{signatures.TELEGRAM_HEADER: "not-the-secret"})
    await refused(ingest, forged, 403, "bad_signature")
    await refused(ingest, without(delivery, signatures.TELEGRAM_HEADER), 403, "missing_signature")
    assert await ingest.published_count() == 1


async def test_telegram_other_updates_are_acknowledged(ingest: Ingest) -> None:
    callback = ingest.samples.telegram(update={"update_id": 5, "callback_query": {"id": "x"}})
    assert (await ingest.send(callback)).json()["ignored"] == 1
    assert await ingest.published_count() == 0


# --------------------------------------------------------------------------- Twilio


async def test_twilio_sms(ingest: Ingest) -> None:
    delivery = ingest.samples.twilio_sms(
        message_sid="SM0123456789abcdef0123456789abcdef",
        body="Cướp giật điện thoại ở Đập Đá",
        from_="+84912345678",
        media=[("https://api.twilio.com/m/ME1", "image/jpeg")],
        extra={"FromCity": "HUE", "BrandNewParameter": "signed too"},
    )
    event = await exactly_once(ingest, delivery)
    response = await ingest.send(delivery)
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert (event.channel, event.kind, event.provider) == ("sms", "message", "twilio")
    assert event.provider_message_id == "SM0123456789abcdef0123456789abcdef"
    assert event.sender.phone == "+84912345678" and event.sender.user_id is None
    assert event.text == "Cướp giật điện thoại ở Đập Đá"
    assert [(a.type, a.url, a.mime) for a in event.attachments] == [
        ("image", "https://api.twilio.com/m/ME1", "image/jpeg")
    ]
    assert event.occurred_at == event.received_at  # Twilio sends no time with an SMS
    assert event.key == "sms:+84912345678"

    await refused(ingest, tampered(delivery, b"HUE", b"HCM"), 403, "bad_signature")
    await refused(ingest, without(delivery, signatures.TWILIO_HEADER), 403, "missing_signature")
    assert await ingest.published_count() == 1


async def test_twilio_signature_uses_the_public_url_and_the_port_rule(ingest: Ingest) -> None:
    samples = ingest.samples
    params = {"MessageSid": "SMport", "From": "+84912345678", "Body": "xin chào"}
    # Signed over the public URL with an explicit :443 (the SDK rule): accepted.
    with_port = samples.twilio_form(
        "/webhooks/twilio/sms", params, url="https://hotline.example.vn:443/webhooks/twilio/sms"
    )
    assert (await ingest.send(with_port)).status_code == 200
    # Signed over the internal address the proxy forwarded to: refused.
    internal = samples.twilio_form(
        "/webhooks/twilio/sms",
        {**params, "MessageSid": "SMinternal"},
        url="http://ingest.test/webhooks/twilio/sms",
    )
    await refused(ingest, internal, 403, "bad_signature")
    assert await ingest.published_count() == 1


async def test_twilio_voice_call_outcomes(ingest: Ingest) -> None:
    samples = ingest.samples
    missed = samples.twilio_voice(call_sid="CAmissed", call_status="no-answer")
    missed_event = await exactly_once(ingest, missed)
    assert (missed_event.channel, missed_event.kind, missed_event.provider) == (
        "voice",
        "call_missed",
        "twilio",
    )
    assert missed_event.sender.phone == "+84912345678"
    assert missed_event.call is not None and missed_event.call.status == "no-answer"
    assert missed_event.occurred_at == datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)

    for status in ("ringing", "in-progress"):
        progress = samples.twilio_voice(call_sid="CAanswered", call_status=status)
        assert (await ingest.send(progress)).status_code == 200
    completed = samples.twilio_voice(
        call_sid="CAanswered", call_status="completed", extra={"CallDuration": "95"}
    )
    assert (await ingest.send(completed)).status_code == 200
    recording = samples.twilio_voice(
        call_sid="CAvm",
        call_status="completed",
        extra={
            "RecordingSid": "RE1",
            "RecordingUrl": "https://api.twilio.com/rec/RE1",
            "RecordingDuration": "31",
            "RecordingStatus": "completed",
        },
    )
    assert (await ingest.send(recording)).status_code == 200
    transcript = samples.twilio_voice(
        call_sid="CAvm",
        call_status="completed",
        extra={
            "RecordingSid": "RE1",
            "TranscriptionSid": "TR1",
            "TranscriptionText": "Nhà tôi bị trộm",
            "TranscriptionStatus": "completed",
        },
    )
    assert (await ingest.send(transcript)).status_code == 200
    await refused(ingest, tampered(missed, b"no-answer", b"completed"), 403, "bad_signature")

    events = await ingest.events(4)
    assert [(e.kind, e.provider_message_id) for e in events] == [
        ("call_missed", "CAmissed:missed"),
        ("call_answered", "CAanswered:answered"),
        ("voicemail", "CAvm:recording:RE1"),
        ("voicemail", "CAvm:transcript:TR1"),
    ]
    answered, recorded, transcribed = events[1:]
    assert answered.call is not None and answered.call.duration_s == 95
    assert recorded.call is not None and recorded.call.recording_url == (
        "https://api.twilio.com/rec/RE1"
    )
    assert recorded.call.duration_s == 31
    assert transcribed.text == "Nhà tôi bị trộm"


# --------------------------------------------------------------------------- PBX


async def test_pbx_asterisk_missed_and_freeswitch_voicemail(ingest: Ingest) -> None:
    missed = ingest.samples.pbx(call_id="1718000000.42", outcome="missed", hangup_cause="19")
    event = await exactly_once(ingest, missed)
    assert (event.channel, event.kind, event.provider) == ("voice", "call_missed", "asterisk")
    assert event.provider_message_id == "asterisk:1718000000.42:missed"
    assert event.sender.phone == "+84912345678"
    assert event.call is not None and event.call.hangup_cause == "19"
    # ARI's ISO-8601 with a +0700 offset, in UTC.
    assert event.occurred_at == datetime(2024, 6, 10, 6, 33, 20, 123000, tzinfo=UTC)

    voicemail = ingest.samples.pbx(
        pbx="freeswitch",
        call_id="4f6a2c1e",
        outcome="voicemail",
        caller="+84 91 234 5678",
        recording_url="https://pbx.example.vn/rec/4f6a.wav",
        transcript="Nhà tôi bị mất trộm xe máy",
        duration_s=37,
    )
    assert (await ingest.send(voicemail)).status_code == 200
    _, vm = await ingest.events(2)
    assert (vm.kind, vm.provider, vm.text) == (
        "voicemail",
        "freeswitch",
        "Nhà tôi bị mất trộm xe máy",
    )
    # FreeSWITCH Event-Date-Timestamp is epoch microseconds.
    assert vm.occurred_at == datetime(2024, 6, 10, 6, 13, 20, 123456, tzinfo=UTC)
    assert vm.call is not None and vm.call.duration_s == 37
    assert vm.sender.phone == "+84912345678"


async def test_pbx_signature_and_replay_window(ingest: Ingest) -> None:
    delivery = ingest.samples.pbx(outcome="answered", agent="ext-201")
    await refused(ingest, tampered(delivery, b"answered", b"missed"), 401, "bad_signature")
    await refused(ingest, without(delivery, signatures.PBX_HEADER), 401, "missing_signature")
    stale = ingest.samples.pbx(outcome="answered", signed_at=1_000_000_000)
    await refused(ingest, stale, 401, "bad_signature")
    assert await ingest.published_count() == 0
    event = await exactly_once(ingest, delivery)
    assert (
        event.kind == "call_answered" and event.call is not None and event.call.agent == "ext-201"
    )


# --------------------------------------------------------------------------- web form, desk


async def test_web_form(ingest: Ingest) -> None:
    delivery = ingest.samples.web(
        submission_id="form-0001-abcdef", latitude=16.47, longitude=107.58
    )
    first = await ingest.send(delivery)
    assert first.status_code == 202
    again = await ingest.send(delivery)
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}
    [event] = await ingest.events(1)
    assert event.event_id == first.json()["event_id"]
    assert (event.channel, event.kind, event.provider) == ("web", "message", "web_form")
    assert event.provider_message_id == "form-0001-abcdef"
    assert event.sender.phone == "+84912345678"
    assert event.sender.display_name == "Nguyễn Văn An"
    assert event.place == "Đường Lê Duẩn, phường Phú Thuận"
    assert event.location is not None and event.location.lat == 16.47
    assert await ingest.published_count() == 1


async def test_desk_call_summary(ingest: Ingest) -> None:
    delivery = ingest.samples.desk(summary_id="cs-2024-0124-0001", duration_s=180)
    first = await ingest.send(delivery)
    assert first.status_code == 202, first.text
    again = await ingest.send(delivery)
    assert again.json()["status"] == "duplicate"
    [event] = await ingest.events(1)
    assert (event.channel, event.kind, event.provider) == ("desk", "call_summary", "desk")
    assert event.logged_by == "dev-call-taker"
    assert event.sender.phone == "+84912345678"
    assert event.text == "Người gọi báo cháy nhà kho, khói lớn"
    assert event.place == "Kiệt 12 Phan Đình Phùng"
    assert event.call is not None and event.call.duration_s == 180
    assert event.provider_ids["call_id"] == "1718000000.42"

    stolen = delivery.with_headers(Authorization="Bearer not-a-token")
    await refused(ingest, stolen, 401, "unauthorized")
    await refused(ingest, without(delivery, "Authorization"), 401, "unauthorized")
    assert (await ingest.send(stolen)).headers["www-authenticate"] == "Bearer"
    assert await ingest.published_count() == 1
