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
    ],
)
def test_phone_numbers_inside_text_are_masked(text: str) -> None:
    masked = mask_text(text)
    digits = "".join(c for c in masked if c.isdigit())
    assert len(digits) <= 5, masked
    assert "*" in masked


def test_non_phone_numbers_are_left_alone() -> None:
    for text in ("case HUE-20240124-0042 at 14:30", "at 2024-01-24 01:42:03", "/cases/123456789/"):
        assert mask_text(text) == text


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
