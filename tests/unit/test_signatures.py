"""Provider signature schemes (hotline.signatures): published vectors, tampering, edge cases."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.signatures import (
    constant_time_equals,
    is_valid_telegram_secret,
    parse_pbx_header,
    pbx_signature,
    twilio_signature,
    twilio_url_candidates,
    verify_pbx,
    verify_telegram,
    verify_twilio,
    verify_viber,
    verify_whatsapp,
    verify_zalo,
    viber_signature,
    whatsapp_signature,
    zalo_signature,
)

# RFC 4231 test case 2: HMAC-SHA256 with key "Jefe".
RFC4231_KEY = "Jefe"
RFC4231_DATA = b"what do ya want for nothing?"
RFC4231_HMAC = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

# Twilio's documented request-validation example (two published variants of the caller).
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


# --------------------------------------------------------------------------- Zalo


def test_zalo_is_a_plain_sha256_of_app_id_body_timestamp_secret() -> None:
    # sha256("abc") is the FIPS 180-2 vector: the pieces are concatenated with no separator.
    abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert zalo_signature("a", b"b", "c", "") == f"mac={abc}"
    body = '{"app_id":"123","timestamp":"1718000000123","message":{"text":"Tôi cần hỗ trợ"}}'
    expected = hashlib.sha256(("123" + body + "1718000000123" + "oa-key").encode()).hexdigest()
    assert zalo_signature("123", body.encode(), "1718000000123", "oa-key") == f"mac={expected}"


def test_zalo_accepts_the_header_with_or_without_mac_prefix() -> None:
    body = b'{"app_id":"1","timestamp":"2"}'
    sig = zalo_signature("1", body, "2", "k")

    def ok(header: str | None, body: bytes = body, ts: str = "2", key: str = "k") -> bool:
        return verify_zalo(header, app_id="1", body=body, timestamp=ts, oa_secret_key=key)

    assert ok(sig)
    assert ok(sig.removeprefix("mac="))
    assert ok("mac=" + sig.removeprefix("mac=").upper())
    assert not ok(None)
    assert not ok("")
    assert not ok(sig, key="other")
    assert not ok(sig, body=body + b" ")
    assert not ok(sig, ts="3")


# --------------------------------------------------------------------------- Viber, WhatsApp


def test_viber_is_hex_hmac_sha256_without_prefix() -> None:
    assert viber_signature(RFC4231_DATA, RFC4231_KEY) == RFC4231_HMAC
    assert verify_viber(RFC4231_HMAC, RFC4231_DATA, RFC4231_KEY)
    assert verify_viber(RFC4231_HMAC.upper(), RFC4231_DATA, RFC4231_KEY)
    assert not verify_viber("sha256=" + RFC4231_HMAC, RFC4231_DATA, RFC4231_KEY)
    assert not verify_viber(RFC4231_HMAC, RFC4231_DATA + b"x", RFC4231_KEY)
    assert not verify_viber(None, RFC4231_DATA, RFC4231_KEY)


def test_whatsapp_requires_the_sha256_prefix_and_the_app_secret() -> None:
    assert whatsapp_signature(RFC4231_DATA, RFC4231_KEY) == "sha256=" + RFC4231_HMAC
    assert verify_whatsapp("sha256=" + RFC4231_HMAC, RFC4231_DATA, RFC4231_KEY)
    assert not verify_whatsapp(RFC4231_HMAC, RFC4231_DATA, RFC4231_KEY)  # prefix missing
    assert not verify_whatsapp("sha1=" + RFC4231_HMAC, RFC4231_DATA, RFC4231_KEY)
    assert not verify_whatsapp("sha256=" + RFC4231_HMAC, RFC4231_DATA, "verify-token")


# --------------------------------------------------------------------------- Telegram


def test_telegram_compares_the_secret_token() -> None:
    assert verify_telegram("s3cret_-A", "s3cret_-A")
    assert not verify_telegram("s3cret_-a", "s3cret_-A")
    assert not verify_telegram(None, "s3cret")
    assert not verify_telegram("", "")  # an unset secret must never let everything in
    assert not verify_telegram("ẞ", "s")  # non-ASCII header: refused, not a TypeError
    assert is_valid_telegram_secret("a" * 256)
    assert not is_valid_telegram_secret("a" * 257)
    assert not is_valid_telegram_secret("has space")
    assert not is_valid_telegram_secret("")


# --------------------------------------------------------------------------- Twilio


def test_twilio_matches_the_documented_vectors() -> None:
    assert twilio_signature(TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN) == (
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )
    other_caller = {**TWILIO_PARAMS, "Caller": "+14158675310", "From": "+14158675310"}
    assert twilio_signature(TWILIO_URL, other_caller, TWILIO_TOKEN) == (
        "GvWf1cFY/Q7PnoempGyD5oXAezc="
    )
    # Parameter order on the wire does not matter: they are sorted by name.
    shuffled = list(reversed(list(TWILIO_PARAMS.items())))
    assert verify_twilio("RSOYDt4T1cUTdK1PDd93/VVr8B8=", TWILIO_URL, shuffled, TWILIO_TOKEN)


def test_twilio_signature_covers_url_every_parameter_and_token() -> None:
    sig = twilio_signature(TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN)
    assert not verify_twilio(sig, TWILIO_URL + "&x=1", TWILIO_PARAMS, TWILIO_TOKEN)
    assert not verify_twilio(sig, TWILIO_URL, {**TWILIO_PARAMS, "New": ""}, TWILIO_TOKEN)
    assert not verify_twilio(sig, TWILIO_URL, {**TWILIO_PARAMS, "Digits": "9"}, TWILIO_TOKEN)
    assert not verify_twilio(sig, TWILIO_URL, TWILIO_PARAMS, "54321")
    assert not verify_twilio(sig, TWILIO_URL.replace("https", "http"), TWILIO_PARAMS, TWILIO_TOKEN)
    assert not verify_twilio(None, TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN)


def test_twilio_https_port_rule() -> None:
    signed_without = twilio_signature(TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN)
    with_port = TWILIO_URL.replace("mycompany.com", "mycompany.com:443")
    signed_with = twilio_signature(with_port, TWILIO_PARAMS, TWILIO_TOKEN)
    # Twilio signed without the port, our rebuilt URL has ":443" (or the other way round).
    assert verify_twilio(signed_without, with_port, TWILIO_PARAMS, TWILIO_TOKEN)
    assert verify_twilio(signed_with, TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN)
    assert twilio_url_candidates("https://h.vn:8443/p?q=1") == (
        "https://h.vn/p?q=1",
        "https://h.vn:8443/p?q=1",
    )
    assert twilio_url_candidates("http://h.vn/p") == ("http://h.vn/p", "http://h.vn:80/p")
    assert twilio_url_candidates("https://[::1]/p") == ("https://[::1]/p", "https://[::1]:443/p")
    assert twilio_url_candidates("https://h.vn:abc/p") == ("https://h.vn:abc/p",)


def test_twilio_repeated_parameters_contribute_each_distinct_value_sorted() -> None:
    pairs = [("MediaUrl", "b"), ("MediaUrl", "a"), ("Body", "x"), ("MediaUrl", "a")]
    expected = twilio_signature("https://h/p", [("Body", "x"), ("MediaUrl", "a")], "t")
    assert expected != twilio_signature("https://h/p", pairs, "t")
    data = "https://h/pBodyxMediaUrlaMediaUrlb"
    mac = base64.b64encode(hmac.new(b"t", data.encode(), hashlib.sha1).digest()).decode()
    assert twilio_signature("https://h/p", pairs, "t") == mac


# --------------------------------------------------------------------------- PBX


def test_pbx_signature_binds_timestamp_and_body() -> None:
    body = b'{"call_id":"1718000000.42","outcome":"missed"}'
    header = pbx_signature(body, "pbx-secret", 1_718_000_000)
    mac = hmac.new(b"pbx-secret", b"1718000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1718000000,v1={mac}"
    assert verify_pbx(header, body, "pbx-secret", now=1_718_000_100)
    assert not verify_pbx(header, body + b" ", "pbx-secret", now=1_718_000_100)
    assert not verify_pbx(header, body, "other", now=1_718_000_100)
    forged_time = header.replace("t=1718000000", "t=1718000100")
    assert not verify_pbx(forged_time, body, "pbx-secret", now=1_718_000_100)


def test_pbx_replay_window_both_directions() -> None:
    header = pbx_signature(b"{}", "s", 1_000_000)
    assert verify_pbx(header, b"{}", "s", now=1_000_300)
    assert not verify_pbx(header, b"{}", "s", now=1_000_301)
    assert not verify_pbx(header, b"{}", "s", now=999_699)
    assert verify_pbx(header, b"{}", "s", now=1_000_900, tolerance_s=900)


def test_pbx_header_parsing_and_rotation() -> None:
    old = pbx_signature(b"{}", "old", 5).split("v1=")[1]
    new = pbx_signature(b"{}", "new", 5).split("v1=")[1]
    assert parse_pbx_header(f"t=5,v1={old},v1={new}") == (5, [old, new])
    assert verify_pbx(f"t=5,v1={old},v1={new}", b"{}", "new", now=5)
    for bad in ["", "v1=ab", "t=5", "t=x,v1=ab", "t=5,t=6,v1=ab", "garbage", "t=-5,v1=ab", None]:
        assert parse_pbx_header(bad) is None
        assert not verify_pbx(bad, b"{}", "s", now=5)
    assert parse_pbx_header("t=5,v1=" + "a" * 2000) is None  # oversized header refused early


# --------------------------------------------------------------------------- properties


@given(st.binary(max_size=2048), st.text(min_size=1, max_size=64))
def test_every_scheme_round_trips_and_rejects_a_flipped_body(body: bytes, key: str) -> None:
    flipped = bytes([body[0] ^ 1]) + body[1:] if body else b"x"
    assert verify_viber(viber_signature(body, key), body, key)
    assert not verify_viber(viber_signature(body, key), flipped, key)
    assert verify_whatsapp(whatsapp_signature(body, key), body, key)
    assert not verify_whatsapp(whatsapp_signature(body, key), flipped, key)
    sig = zalo_signature("app", body, "1", key)
    assert verify_zalo(sig, app_id="app", body=body, timestamp="1", oa_secret_key=key)
    assert not verify_zalo(sig, app_id="app", body=flipped, timestamp="1", oa_secret_key=key)
    header = pbx_signature(body, key, 100)
    assert verify_pbx(header, body, key, now=100)
    assert not verify_pbx(header, flipped, key, now=100)


@given(st.text(max_size=300))
def test_verifiers_never_raise_on_arbitrary_headers(header: str) -> None:
    assert isinstance(verify_viber(header, b"{}", "k"), bool)
    assert isinstance(verify_whatsapp(header, b"{}", "k"), bool)
    assert isinstance(verify_telegram(header, "k"), bool)
    assert isinstance(verify_twilio(header, "https://h/p", {}, "k"), bool)
    assert isinstance(verify_pbx(header, b"{}", "k", now=0), bool)
    assert isinstance(
        verify_zalo(header, app_id="a", body=b"{}", timestamp="1", oa_secret_key="k"), bool
    )


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [("abc", "abc", True), ("abc", "abd", False), (b"abc", "abc", True), ("é", "e", False)],
)
def test_constant_time_equals(a: str | bytes, b: str | bytes, equal: bool) -> None:
    assert constant_time_equals(a, b) is equal
