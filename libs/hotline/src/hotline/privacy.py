"""Masking of personal data: phone numbers and names never leave a service unmasked.

Used by the JSON log formatter (every log line), by alerts to recipients whose role may not see
the reporter's contact, and by the console for viewers.
"""

from __future__ import annotations

import re
from typing import Any

# Digit runs that look like phone numbers: optional +, 9-14 digits with single spaces, dots or
# dashes between them. Runs glued to letters, '-', ':' or '/' are ids, times or paths, not phones
# (a case id HUE-20240124-0042, a timestamp 2024-01-24 01:42, a URL path), with one exception:
# a colon right after a letter is a scheme or a label (`whatsapp:84912345678`, WhatsApp's Kafka
# key; `tel:+849…`, `sms:849…`, `sđt:09…`), while a colon after a digit is a time (`17:54:59`).
_PHONE_RE = re.compile(r"(?:(?<![\w/\-:.])|(?<=[^\W\d_]:))\+?\d(?:[ .\-]?\d){8,13}(?![\w/:\-])")

SENSITIVE_KEYS = frozenset(
    {
        "phone",
        "from",
        "to",
        "sender",
        "sender_phone",
        "caller",
        "callee",
        "address",
        "name",
        "display_name",
        "first_name",
        "last_name",
        "username",
        "wa_id",
        "email",
        "reporter",
    }
)


def mask_phone(value: str) -> str:
    """Keep the country code head and the last two digits: +84912345678 -> +849******78."""
    digits = [c for c in value if c.isdigit()]
    if len(digits) < 6:
        return "*" * len(digits)
    head = "".join(digits[:3])
    tail = "".join(digits[-2:])
    prefix = "+" if value.strip().startswith("+") else ""
    return f"{prefix}{head}{'*' * (len(digits) - 5)}{tail}"


def mask_name(value: str) -> str:
    """Initials only: 'Nguyễn Văn An' -> 'N. V. A.'."""
    parts = [p for p in value.split() if p]
    return " ".join(f"{p[0]}." for p in parts) if parts else ""


def mask_address(value: str) -> str:
    """An address on some channel: a phone number, an e-mail, or an opaque user id."""
    if "@" in value:
        user, _, domain = value.partition("@")
        return f"{user[:1]}***@{domain}"
    if sum(c.isdigit() for c in value) >= 8 and not any(c.isalpha() for c in value):
        return mask_phone(value)
    if len(value) <= 4:
        return "****"
    return f"{value[:2]}***{value[-2:]}"


def mask_text(value: str) -> str:
    """Mask every phone-number-like digit run inside free text."""
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), value)


def mask_value(key: str, value: Any) -> Any:
    """Mask a structured log field by its name and, for strings, by its content."""
    if isinstance(value, dict):
        return {k: mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(key, v) for v in value]
    if not isinstance(value, str):
        return value
    lowered = key.lower()
    if lowered in SENSITIVE_KEYS:
        if "name" in lowered:
            return mask_name(value)
        return mask_address(value)
    return mask_text(value)
