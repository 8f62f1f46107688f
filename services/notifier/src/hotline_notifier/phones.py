"""Phone numbers among contact addresses: which addresses are numbers, and one spelling each.

Officers' contacts are configuration typed by people ('0905 111 222', '+84905111222',
'84905111222'); citizens' come from ingest in E.164. The SMS providers, Zalo's ZNS and the
matching of a reply to the person on an escalation chain all need to know that these are one
number. Vietnam is the default region, as at ingest.
"""

from __future__ import annotations

import re


def is_phone(address: str) -> bool:
    """A phone number ('+84…' or '0…', spaces, dots and dashes allowed) rather than a channel's
    user id (a Zalo or Viber id is a long opaque string with neither prefix)."""
    compact = re.sub(r"[\s.\-]", "", address)
    return bool(re.fullmatch(r"(\+\d{8,14})|(0\d{8,10})", compact))


def e164(address: str) -> str:
    """+84912345678 from '+84 912 345 678', '0912345678' or '84912345678' (Vietnam default)."""
    digits = re.sub(r"\D", "", address)
    if address.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("0"):
        return "+84" + digits[1:]
    return "+" + digits


def comparable(address: str) -> str:
    """One spelling per address: a phone number as its international digits (0905… and
    +84905… are one number), anything else as given without surrounding blanks."""
    return e164(address).removeprefix("+") if is_phone(address) else address.strip()
