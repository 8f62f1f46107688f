"""Phone numbers and names never reach a log line unmasked."""

from __future__ import annotations

import json
import logging

import pytest

from hotline.logging import JsonFormatter
from hotline.privacy import mask_address, mask_name, mask_phone, mask_text


def test_mask_phone_keeps_only_head_and_tail() -> None:
    assert mask_phone("+84912345678") == "+849******78"
    assert "12345" not in mask_phone("0912345678")


@pytest.mark.parametrize(
    "text",
    [
        "gọi lại cho tôi 0912 345 678 nhé",
        "sdt: +84912345678",
        "số 0919.69.75.75",
        "call 091-234-5678",
        # After a scheme or a label and a colon: WhatsApp's Kafka key, tel: and sms: URIs.
        "whatsapp:84912345678",
        "key=whatsapp:84912345678 sent",
        "tel:84912345678",
        "tel:+84912345678",
        "<a href='tel:0912345678'>",
        "sms:+84912345678",
        "sms:84912345678",
        "sđt:0912345678",
    ],
)
def test_phone_numbers_inside_text_are_masked(text: str) -> None:
    masked = mask_text(text)
    digits = "".join(c for c in masked if c.isdigit())
    assert len(digits) <= 5, masked
    assert "*" in masked


@pytest.mark.parametrize(
    "text",
    [
        "case HUE-20240124-0042 at 14:30",
        "at 2024-01-24 01:42:03",
        "/cases/123456789/",
        "case HUE-2026-000123",
        "case:HUE-2026-000123",
        "0193a5b2-7c1d-7e3f-9a4b-123456789012",
        "event_id:01234567-8901-7234-8567-890123456789",
        "2026-11-30T17:54:59Z",
        "2026-11-30T17:54:59.123456789+07:00",
        "at:2026-11-30T17:54:59.123456+07:00",
        "received 2026-11-30 17:54:59.123456789",
        "viber:5491234567890123456",  # a 19-digit provider id is not a phone
        "kafka 127.0.0.1:9092, mongodb://127.0.0.1:27017/",
    ],
)
def test_non_phone_numbers_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_a_prefixed_phone_keeps_its_prefix() -> None:
    assert mask_text("whatsapp:84912345678") == "whatsapp:849******78"
    assert mask_text("tel:+84912345678") == "tel:+849******78"


def test_mask_name_and_address() -> None:
    assert mask_name("Nguyễn Văn An") == "N. V. A."
    assert mask_address("an.nguyen@example.vn") == "a***@example.vn"
    assert mask_address("8800112233445566").count("*") >= 8
    assert mask_address("aB3dE5fG7hI9jK1l==") == "aB***=="


def _format(**extra: object) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "msg %s", ("0912345678",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return dict(json.loads(JsonFormatter("test").format(record)))


def test_json_log_line_masks_message_and_sensitive_fields() -> None:
    line = _format(phone="+84912345678", display_name="Trần Thị Bình", event_id="abc")
    rendered = json.dumps(line, ensure_ascii=False)
    assert "0912345678" not in rendered
    assert "84912345678" not in rendered
    assert "Trần Thị Bình" not in rendered
    assert line["event_id"] == "abc"
    assert line["display_name"] == "T. T. B."
    assert line["service"] == "test"


def test_nested_fields_are_masked_too() -> None:
    line = _format(sender={"phone": "+84912345678", "user_id": "123"})
    assert "84912345678" not in json.dumps(line)
