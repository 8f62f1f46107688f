"""Pure normalisation helpers shared by every provider parser (no I/O, no clock reads).

Whatever a provider or a citizen sends, what leaves here is safe to publish: text in Unicode
NFC without control characters (newlines and tabs kept), capped with a flag; phone numbers in
E.164 (default region VN) or nothing; times timezone-aware UTC; ids as strings.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

import phonenumbers
from pydantic import BeforeValidator, ValidationError

from hotline.contracts.events import (
    RAW_PAYLOAD_LIMIT,
    TEXT_LIMIT,
    Attachment,
    GeoPoint,
    InboundEvent,
)

DEFAULT_REGION = "VN"
SHORT_LIMIT = 256  # ids, names, types: anything that is not the message itself
URL_LIMIT = 2048

# C0 and C1 controls and DEL, except tab and newline (line breaks are kept as "\n").
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NEWLINES = re.compile(r"\r\n?")
_WHITESPACE_RUN = re.compile(r"\s+")

# Provider timestamps outside this range are garbage; the event then takes received_at.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- errors


class Malformed(Exception):
    """The body is not what the endpoint takes (not JSON, not a form, not UTF-8): 400."""


class Invalid(Exception):
    """The body parses but a field is missing or wrong: 422, naming the fields."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors

    @classmethod
    def field(cls, loc: tuple[str | int, ...], msg: str) -> Invalid:
        return cls([{"loc": loc, "msg": msg, "type": "value_error"}])

    @classmethod
    def from_validation(cls, exc: ValidationError) -> Invalid | Malformed:
        """A pydantic error: 400 if the bytes are not JSON at all, else 422 with the fields."""
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        for err in errors:
            if err.get("type") in ("json_invalid", "json_type"):
                return Malformed(f"body is not valid JSON: {err.get('msg', '')}"[:300])
        return cls(
            [
                {
                    "loc": tuple(err.get("loc", ())),
                    "msg": err.get("msg", "invalid"),
                    "type": err.get("type", "value_error"),
                }
                for err in errors[:20]
            ]
        )


# --------------------------------------------------------------------------- text


def clean_text(value: object, limit: int = TEXT_LIMIT) -> tuple[str, bool]:
    """NFC, line breaks as "\\n", no control characters, trimmed, capped: (text, truncated)."""
    if value is None:
        return "", False
    text = value if isinstance(value, str) else str(value)
    if not text:
        return "", False
    # Lone surrogates cannot be encoded as UTF-8 (and JSON parsers refuse them); replace them.
    text = text.encode("utf-8", "replace").decode("utf-8")
    # Controls go before NFC: one between a letter and its combining mark would otherwise keep
    # them apart through NFC and leave a decomposed pair behind once it is removed.
    text = _CONTROL.sub("", _NEWLINES.sub("\n", text))
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) > limit:
        return text[:limit], True
    return text, False


def clean_short(value: object, limit: int = SHORT_LIMIT) -> str | None:
    """A one-line field (id, name, type, place): cleaned, whitespace runs folded, or None."""
    if value is None or isinstance(value, bool):
        return None
    text, _ = clean_text(value, limit * 2)
    text = _WHITESPACE_RUN.sub(" ", text).strip()[:limit]
    return text or None


def require_id(value: object, loc: tuple[str | int, ...]) -> str:
    """A provider id the event cannot do without (it is the deduplication key)."""
    cleaned = clean_short(value)
    if cleaned is None:
        raise Invalid.field(loc, "required: a non-empty id")
    return cleaned


def clean_url(value: object) -> str | None:
    url = clean_short(value, URL_LIMIT)
    return url if url and " " not in url else None


def _id_to_str(value: object) -> object:
    """Provider ids may arrive as JSON numbers beyond 2^53: keep them exact, as text."""
    if isinstance(value, bool):
        return value  # let the str validation refuse it
    if isinstance(value, int):
        return str(value)
    return value


IdStr = Annotated[str, BeforeValidator(_id_to_str)]
"""A provider id: a JSON string or integer, always carried as a string."""


# --------------------------------------------------------------------------- phones


def to_e164(raw: object, region: str = DEFAULT_REGION) -> str | None:
    """A phone number in E.164, or None when it is not one.

    Tries the number as written (national numbers in the default region), then, for digits
    without a leading "+" or "0" (WhatsApp's `wa_id`, some Telegram contacts), as international.
    A valid number wins; a merely possible one (a new range the metadata does not know yet) is
    kept too, because losing a callback number is worse than keeping an odd one.
    """
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        return None
    return _to_e164(str(raw), region)


@functools.lru_cache(maxsize=16_384)  # citizens write again and again; parsing is not cheap
def _to_e164(text: str, region: str) -> str | None:
    text = text.strip()
    if not text or len(text) > 40:
        return None
    candidates = [text]
    digits = "".join(c for c in text if c.isdigit())
    if digits and not text.startswith(("+", "0")) and len(digits) >= 8:
        candidates.append("+" + digits)
    possible: str | None = None
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number):
            return str(formatted)
        if possible is None and phonenumbers.is_possible_number(number):
            possible = str(formatted)
    return possible


# --------------------------------------------------------------------------- times


def _bounded(value: datetime) -> datetime | None:
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value if _EARLIEST <= value < _LATEST else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        number = float(value.strip())
    else:
        return None
    return number if math.isfinite(number) else None


def from_epoch(value: object, unit: float) -> datetime | None:
    """Epoch time in `unit` seconds per tick (1 s, 1e-3 ms, 1e-6 µs), string or number."""
    number = _number(value)
    if number is None:
        return None
    try:
        return _bounded(datetime.fromtimestamp(number * unit, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def from_iso8601(value: object) -> datetime | None:
    """ISO-8601 as Asterisk ARI writes it (`2024-01-24T08:42:03.123+0700`); naive means UTC."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    # Python < 3.12 does not read "+0700"; ARI writes the offset without a colon.
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        return _bounded(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def from_rfc2822(value: object) -> datetime | None:
    """RFC 2822 dates as Twilio writes `Timestamp` (`Wed, 24 Jan 2024 01:42:03 +0000`)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return _bounded(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- media, places


def geo(lat: object, lon: object) -> GeoPoint | None:
    """Coordinates if both are finite numbers within range, else None (never an error)."""
    la, lo = _number(lat), _number(lon)
    if la is None or lo is None or not (-90 <= la <= 90 and -180 <= lo <= 180):
        return None
    return GeoPoint(lat=la, lon=lo)


def size_of(value: object) -> int | None:
    number = _number(value)
    if number is None or number < 0 or number > 2**53:
        return None
    return int(number)


def attachment(
    kind: object,
    *,
    url: object = None,
    size: object = None,
    name: object = None,
    mime: object = None,
) -> Attachment:
    """Metadata of one media item; the bytes stay with the provider."""
    return Attachment(
        type=clean_short(kind, 32) or "file",
        url=clean_url(url),
        size=size_of(size),
        name=clean_short(name),
        mime=clean_short(mime, 128),
    )


def cap_raw(body: bytes, limit: int = RAW_PAYLOAD_LIMIT) -> tuple[str, bool]:
    """The provider's payload as text for audit, at most `limit` bytes of it."""
    if len(body) <= limit:
        return body.decode("utf-8", "replace"), False
    # Cut on bytes, then drop a character split by the cut rather than invent one.
    return body[:limit].decode("utf-8", "ignore"), True


# --------------------------------------------------------------------------- events


@dataclass
class EventContext:
    """What every event built from one request shares: arrival time, raw payload, id source."""

    received_at: datetime
    raw: str = ""
    raw_truncated: bool = False
    new_id: Callable[[], str] = field(default=lambda: "")

    @classmethod
    def for_body(
        cls, body: bytes, received_at: datetime, new_id: Callable[[], str]
    ) -> EventContext:
        raw, truncated = cap_raw(body)
        return cls(received_at=received_at, raw=raw, raw_truncated=truncated, new_id=new_id)

    def event(
        self,
        *,
        text: object = None,
        occurred_at: datetime | None = None,
        provider_ids: dict[str, object] | None = None,
        **fields: Any,
    ) -> InboundEvent:
        """An inbound event with the shared fields filled in and the text normalised."""
        clean, truncated = clean_text(text)
        ids = {
            k: cleaned
            for k, v in (provider_ids or {}).items()
            if (cleaned := clean_short(v)) is not None
        }
        return InboundEvent(
            event_id=self.new_id(),
            text=clean,
            text_truncated=truncated,
            provider_ids=ids,
            occurred_at=(_bounded(occurred_at) if occurred_at else None) or self.received_at,
            received_at=self.received_at,
            raw=self.raw,
            raw_truncated=self.raw_truncated,
            **fields,
        )


@dataclass
class Parsed:
    """What a parser found in one request: events to publish, events acknowledged only."""

    events: list[InboundEvent] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def bounded_label(value: object, known: frozenset[str]) -> str:
    """A provider event name as a metric label: known names as they are, the rest `other`."""
    return value if isinstance(value, str) and value in known else "other"
