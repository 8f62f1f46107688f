"""Parsers and normalisers, pure (no stack): hypothesis throws arbitrary bytes, invalid UTF-8,
control characters, huge and emoji-only text at them; only 400/422-class errors may come out,
and every event they produce is publishable."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.contracts.events import RAW_PAYLOAD_LIMIT, TEXT_LIMIT, InboundEvent, decode, encode
from hotline_ingest.normalize import (
    EventContext,
    Invalid,
    Malformed,
    Parsed,
    cap_raw,
    clean_short,
    clean_text,
    from_epoch,
    from_iso8601,
    from_rfc2822,
    geo,
    to_e164,
)
from hotline_ingest.providers import pbx, telegram, twilio, viber, web, whatsapp, zalo
from hotline_ingest.samples import Samples
from hotline_ingest.settings import IngestSettings

RECEIVED = datetime(2024, 1, 24, 1, 42, 3, tzinfo=UTC)
SAMPLES = Samples(IngestSettings(environment="test"))


def ctx(body: bytes) -> EventContext:
    counter = iter(range(10**9))
    return EventContext.for_body(
        body, RECEIVED, lambda: f"0190a000-0000-7000-8000-{next(counter):012d}"
    )


PARSERS: dict[str, Callable[[bytes], Parsed]] = {
    "zalo": lambda b: zalo.parse(b, ctx(b)),
    "viber": lambda b: viber.parse(b, ctx(b)),
    "whatsapp": lambda b: whatsapp.parse(b, ctx(b)),
    "telegram": lambda b: telegram.parse(b, ctx(b)),
    "pbx": lambda b: pbx.parse(b, ctx(b)),
    "web": lambda b: web.parse_web(b, ctx(b)),
    "desk": lambda b: web.parse_desk(b, ctx(b), "ct-01"),
    "sms": lambda b: twilio.parse_sms(twilio.form_pairs(b), ctx(b)),
    "voice": lambda b: twilio.parse_voice(twilio.form_pairs(b), ctx(b)),
}


def check_publishable(parsed: Parsed) -> None:
    """What every event must satisfy to be published."""
    for event in parsed.events:
        assert decode(InboundEvent, encode(event)) == event
        assert event.provider_message_id
        assert len(event.text) <= TEXT_LIMIT
        assert unicodedata.is_normalized("NFC", event.text)
        assert not any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in event.text)
        assert len(event.raw.encode()) <= RAW_PAYLOAD_LIMIT
        assert event.occurred_at.tzinfo is not None and event.received_at == RECEIVED
        if event.sender.phone is not None:
            assert event.sender.phone.startswith("+")
    for label in parsed.ignored:
        assert label.isascii() and len(label) <= 40


def parse_or_refuse(name: str, body: bytes) -> Parsed | None:
    try:
        parsed = PARSERS[name](body)
    except (Malformed, Invalid):
        return None
    check_publishable(parsed)
    return parsed


# --------------------------------------------------------------------------- arbitrary input


@pytest.mark.parametrize("name", sorted(PARSERS))
@given(body=st.binary(max_size=4096))
@settings(max_examples=150, deadline=None)
def test_arbitrary_bytes_are_refused_or_publishable(name: str, body: bytes) -> None:
    parse_or_refuse(name, body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("name", sorted(PARSERS))
@given(
    data=st.dictionaries(
        st.sampled_from(
            [
                "event",
                "message",
                "sender",
                "entry",
                "update_id",
                "text",
                "event_name",
                "app_id",
                "timestamp",
                "object",
                "pbx",
                "call_id",
                "outcome",
                "caller_number",
                "summary",
                "message_token",
                "changes",
            ]
        ),
        json_values,
        max_size=8,
    )
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_json_shapes_are_refused_or_publishable(
    name: str, data: dict[str, object]
) -> None:
    parse_or_refuse(name, json.dumps(data).encode())


awkward_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Mn"])),
    st.text(alphabet=st.sampled_from("🚨🔥🆘👮‍♂️\u200d🏳️‍🌈"), min_size=1),
    st.just("á" * 100_000),
    st.just("x" * (TEXT_LIMIT + 1)),
    st.just("e\u0000\u0301 Cu\u031bu"),
)


@given(text=awkward_text)
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ],
)
def test_awkward_text_through_every_json_channel(text: str) -> None:
    bodies = {
        "zalo": SAMPLES.zalo(text=text).body,
        "viber": SAMPLES.viber(text=text).body,
        "whatsapp": SAMPLES.whatsapp(messages=[SAMPLES.whatsapp_message(text=text)]).body,
        "telegram": SAMPLES.telegram(text=text).body,
        "pbx": SAMPLES.pbx(outcome="voicemail", transcript=text).body,
        "sms": SAMPLES.twilio_sms(body=text).body,
        "web": SAMPLES.web(text=text).body,
    }
    expected, truncated = clean_text(text)
    for name, body in bodies.items():
        parsed = parse_or_refuse(name, body)
        if name == "web" and not expected:
            assert parsed is None  # an empty report is refused (422), not published
            continue
        assert parsed is not None, name
        [event] = parsed.events
        assert event.text == expected, name
        assert event.text_truncated == truncated


# --------------------------------------------------------------------------- text


def test_clean_text() -> None:
    assert clean_text(None) == ("", False)
    assert clean_text("  Cứu\u0000 tôi\r\n\tngay\u009b ") == ("Cứu tôi\n\tngay", False)
    decomposed = unicodedata.normalize("NFD", "Đường Lê Duẩn")
    assert clean_text(decomposed) == ("Đường Lê Duẩn", False)
    # A control between a letter and its mark does not leave them decomposed.
    assert clean_text("e\u0000\u0301") == ("é", False)
    assert clean_text("\ud800x") == ("?x", False)  # a lone surrogate cannot be encoded
    assert clean_text("🚨👮‍♂️") == ("🚨👮‍♂️", False)  # ZWJ sequences survive (Cf is kept)
    text, cut = clean_text("á" * (TEXT_LIMIT + 10))
    assert cut and len(text) == TEXT_LIMIT
    assert clean_short("  Nguyễn\n  Văn\tAn  ") == "Nguyễn Văn An"
    assert clean_short("   ") is None and clean_short(True) is None
    assert clean_short(123456789012345678901234567890) == "123456789012345678901234567890"


@given(st.binary(max_size=RAW_PAYLOAD_LIMIT * 2))
@settings(max_examples=60)
def test_cap_raw_never_exceeds_the_limit(body: bytes) -> None:
    raw, truncated = cap_raw(body)
    assert truncated == (len(body) > RAW_PAYLOAD_LIMIT)
    if truncated:
        assert len(raw.encode()) <= RAW_PAYLOAD_LIMIT


def test_cap_raw_does_not_split_a_character() -> None:
    body = "ư".encode() * RAW_PAYLOAD_LIMIT
    raw, truncated = cap_raw(body)
    assert truncated and set(raw) == {"ư"} and len(raw.encode()) <= RAW_PAYLOAD_LIMIT


# --------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0912345678", "+84912345678"),
        ("091 234 5678", "+84912345678"),
        ("+84 91-234-5678", "+84912345678"),
        ("84912345678", "+84912345678"),  # WhatsApp wa_id / Telegram contact: no "+"
        ("02343822113", "+842343822113"),  # Huế landline
        ("+14155550100", "+14155550100"),
        ("anonymous", None),
        ("+266696687", None),  # Twilio's "withheld" caller id
        ("113", None),
        ("", None),
        ("0" * 60, None),
        (True, None),
        (None, None),
    ],
)
def test_to_e164(raw: object, e164: str | None) -> None:
    assert to_e164(raw) == e164


@given(st.text(max_size=50))
def test_to_e164_never_raises(raw: str) -> None:
    result = to_e164(raw)
    assert result is None or (result.startswith("+") and result[1:].isdigit())


# --------------------------------------------------------------------------- times and places


def test_time_units() -> None:
    second = datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)
    assert from_epoch("1718000000", 1.0) == second  # WhatsApp: string seconds
    assert from_epoch(1718000000, 1.0) == second  # Telegram: int seconds
    assert from_epoch("1718000000123", 1e-3) == second.replace(microsecond=123000)  # Zalo
    assert from_epoch(1718000000123, 1e-3) == second.replace(microsecond=123000)  # Viber
    assert from_epoch(1718000000123456, 1e-6) == second.replace(microsecond=123456)  # FreeSWITCH
    for junk in (None, True, "", "abc", "1e9", float("inf"), 10**30, -(10**30), 0):
        assert from_epoch(junk, 1.0) is None
    assert from_iso8601("2024-06-10T13:33:20.123+0700") == datetime(
        2024, 6, 10, 6, 33, 20, 123000, tzinfo=UTC
    )
    assert from_iso8601("2024-06-10T06:33:20Z") == datetime(2024, 6, 10, 6, 33, 20, tzinfo=UTC)
    assert from_iso8601("yesterday") is None and from_iso8601(5) is None
    assert from_rfc2822("Mon, 10 Jun 2024 06:13:20 +0000") == second
    assert from_rfc2822("nonsense") is None


def test_geo_is_lenient() -> None:
    point = geo("16.4716", 107.588)
    assert point is not None and (point.lat, point.lon) == (16.4716, 107.588)
    for lat, lon in ((91, 0), (0, 181), ("x", 1), (None, 1), (float("nan"), 1), (True, 1)):
        assert geo(lat, lon) is None


# --------------------------------------------------------------------------- provider specifics


def test_provider_ids_beyond_2_53_stay_exact() -> None:
    body = SAMPLES.viber(message_token=18_446_744_073_709_551_615).body
    [event] = viber.parse(body, ctx(body)).events
    assert event.provider_message_id == "18446744073709551615"


def test_whatsapp_unsupported_and_reaction_messages_are_counted_not_published() -> None:
    messages = [
        SAMPLES.whatsapp_message(type="reaction", reaction={"emoji": "👍"}),
        SAMPLES.whatsapp_message(type="unsupported"),
        SAMPLES.whatsapp_message(text="ok"),
    ]
    body = SAMPLES.whatsapp(messages=messages).body
    parsed = whatsapp.parse(body, ctx(body))
    assert parsed.ignored == ["reaction", "other"] and len(parsed.events) == 1


def test_twilio_forms_are_decoded_strictly() -> None:
    with pytest.raises(Malformed):
        twilio.form_pairs(b"Body=%FF%FE&From=1")
    with pytest.raises(Malformed):
        twilio.form_pairs(b"\xff=1")
    with pytest.raises(Malformed):
        twilio.form_pairs("&".join(f"k{i}=v" for i in range(1000)).encode())
    body = urlencode({"MessageSid": "SM1", "From": "+84912345678", "Body": "a+b=c&d"}).encode()
    [event] = twilio.parse_sms(twilio.form_pairs(body), ctx(body)).events
    assert event.text == "a+b=c&d"


def test_telegram_bot_messages_and_foreign_contacts() -> None:
    body = SAMPLES.telegram(message={"from": {"id": 1, "is_bot": True, "first_name": "b"}}).body
    assert telegram.parse(body, ctx(body)).ignored == ["bot"]
    # A contact card of somebody else is not the sender's phone number.
    body = SAMPLES.telegram(
        message={"contact": {"phone_number": "+84912345678", "first_name": "X", "user_id": 99}}
    ).body
    [event] = telegram.parse(body, ctx(body)).events
    assert event.sender.phone is None
