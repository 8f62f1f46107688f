"""Webhook signature schemes of every inbound channel: sign (simulators, tests) and verify (ingest).

Pure functions, no I/O. Each scheme follows ../shared/PROVIDERS.md to the letter:

* Zalo OA, `X-ZEvent-Signature`: `mac=` + hex SHA-256 (a plain hash, not an HMAC) of
  `app_id + body + timestamp + OA secret key`; the `mac=` prefix is optional.
* Viber, `X-Viber-Content-Signature`: hex HMAC-SHA256 of the body, keyed with the auth token.
* WhatsApp Cloud API, `X-Hub-Signature-256`: `sha256=` + hex HMAC-SHA256 of the body, keyed
  with the App Secret.
* Telegram, `X-Telegram-Bot-Api-Secret-Token`: the `secret_token` given to `setWebhook`.
* Twilio (SMS and Voice), `X-Twilio-Signature`: base64 HMAC-SHA1 of the public URL followed by
  every POST parameter (name then value, sorted by name), keyed with the Auth Token.
* PBX adapter (ours), `X-Hotline-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
  "<t>.<body>">`, refused outside a replay window.

Signatures are always computed over the **raw request bytes** as received, never over a
re-serialised body, and every comparison is constant-time (`constant_time_equals`).

Signing functions are public so the provider simulator and the end-to-end tests sign requests
exactly the way the providers do::

    body = json.dumps(update).encode()
    headers = {VIBER_HEADER: viber_signature(body, auth_token)}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "PBX_HEADER",
    "PBX_TOLERANCE_S",
    "TELEGRAM_HEADER",
    "TWILIO_HEADER",
    "VIBER_HEADER",
    "WHATSAPP_HEADER",
    "ZALO_HEADER",
    "constant_time_equals",
    "is_valid_telegram_secret",
    "parse_pbx_header",
    "pbx_signature",
    "twilio_signature",
    "twilio_url_candidates",
    "verify_pbx",
    "verify_telegram",
    "verify_twilio",
    "verify_viber",
    "verify_whatsapp",
    "verify_zalo",
    "viber_signature",
    "whatsapp_signature",
    "zalo_signature",
]

ZALO_HEADER = "X-ZEvent-Signature"
VIBER_HEADER = "X-Viber-Content-Signature"
WHATSAPP_HEADER = "X-Hub-Signature-256"
TELEGRAM_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TWILIO_HEADER = "X-Twilio-Signature"
PBX_HEADER = "X-Hotline-Signature"

PBX_TOLERANCE_S = 300
"""Default replay window of the PBX scheme: a signature older (or newer) than this is refused."""

# Headers are attacker-controlled: anything longer than any genuine signature is refused before
# hashing, so a huge header costs nothing.
_MAX_HEADER = 1024
_TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets or signatures in time independent of where they differ.

    `hmac.compare_digest` refuses non-ASCII `str`, and a header may carry anything, so both
    sides are compared as UTF-8 bytes.
    """
    return hmac.compare_digest(_bytes(a), _bytes(b))


def _hmac_sha256_hex(key: str, body: bytes) -> str:
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _usable(header_value: str | None) -> str | None:
    if header_value is None:
        return None
    value = header_value.strip()
    if not value or len(value) > _MAX_HEADER:
        return None
    return value


# --------------------------------------------------------------------------- Zalo OA


def zalo_signature(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """Zalo's `X-ZEvent-Signature` value (`mac=<64 hex>`) for a webhook body.

    SHA-256 (a plain hash, not an HMAC) of `app_id + raw body + timestamp + OA Secret Key`, no
    separators, where `app_id` and `timestamp` are the exact strings inside the body. The key is
    the OA Secret Key of the webhook settings, not the App Secret.
    """
    digest = hashlib.sha256()
    digest.update(app_id.encode("utf-8"))
    digest.update(body)
    digest.update(timestamp.encode("utf-8"))
    digest.update(oa_secret_key.encode("utf-8"))
    return "mac=" + digest.hexdigest()


def verify_zalo(
    header_value: str | None, *, app_id: str, body: bytes, timestamp: str, oa_secret_key: str
) -> bool:
    """True when the header carries Zalo's signature of this body (with or without `mac=`)."""
    value = _usable(header_value)
    if value is None:
        return False
    if value[:4].lower() == "mac=":
        value = value[4:]
    expected = zalo_signature(app_id, body, timestamp, oa_secret_key)[4:]
    return constant_time_equals(value.lower(), expected)


# --------------------------------------------------------------------------- Viber


def viber_signature(body: bytes, auth_token: str) -> str:
    """Viber's `X-Viber-Content-Signature`: lowercase hex HMAC-SHA256 of the body (no prefix)."""
    return _hmac_sha256_hex(auth_token, body)


def verify_viber(header_value: str | None, body: bytes, auth_token: str) -> bool:
    value = _usable(header_value)
    if value is None:
        return False
    return constant_time_equals(value.lower(), viber_signature(body, auth_token))


# --------------------------------------------------------------------------- WhatsApp


def whatsapp_signature(body: bytes, app_secret: str) -> str:
    """Meta's `X-Hub-Signature-256`: `sha256=` + hex HMAC-SHA256 keyed with the App Secret."""
    return "sha256=" + _hmac_sha256_hex(app_secret, body)


def verify_whatsapp(header_value: str | None, body: bytes, app_secret: str) -> bool:
    """The `sha256=` prefix is required: it names the algorithm, and Meta always sends it."""
    value = _usable(header_value)
    if value is None or value[:7].lower() != "sha256=":
        return False
    expected = whatsapp_signature(body, app_secret)[7:]
    return constant_time_equals(value[7:].lower(), expected)


# --------------------------------------------------------------------------- Telegram


def is_valid_telegram_secret(secret_token: str) -> bool:
    """Telegram accepts 1-256 characters of `A-Za-z0-9_-` as a webhook `secret_token`."""
    return _TELEGRAM_SECRET.fullmatch(secret_token) is not None


def verify_telegram(header_value: str | None, secret_token: str) -> bool:
    """Telegram does not sign the body: it echoes the webhook's secret token in a header."""
    if header_value is None or not secret_token:
        return False
    return constant_time_equals(header_value, secret_token)


# --------------------------------------------------------------------------- Twilio

Params = Mapping[str, str] | Iterable[tuple[str, str]]


def _param_pairs(params: Params) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def twilio_signature(url: str, params: Params, auth_token: str) -> str:
    """Twilio's `X-Twilio-Signature` for a request to `url` carrying these POST parameters.

    The URL exactly as Twilio called it (scheme, host, optional port, path, query), then each
    parameter as name + value sorted by name, no separators; HMAC-SHA1 keyed with the Auth
    Token; standard base64. A name sent several times contributes each distinct value, sorted
    (as the official SDK does). Pass every parameter received: new ones appear without notice
    and are covered by the signature.
    """
    values: dict[str, set[str]] = {}
    for name, value in _param_pairs(params):
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def twilio_url_candidates(url: str) -> tuple[str, ...]:
    """The spellings of `url` a Twilio signature may cover: without and with the port.

    Twilio's back end is inconsistent about an explicit port, so the official SDKs accept a
    signature computed over the URL without its port (an explicit `:443` on https dropped) or
    with the scheme's port made explicit (`:443` for https, `:80` otherwise).
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a non-numeric port cannot have been signed by Twilio either
        return (url,)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    without = urlunsplit(parts._replace(netloc=prefix + host))
    default = 443 if parts.scheme == "https" else 80
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port or default}"))
    return (without, with_port) if without != with_port else (without,)


def verify_twilio(header_value: str | None, url: str, params: Params, auth_token: str) -> bool:
    """True when the header is Twilio's signature of this request (see `twilio_url_candidates`).

    `url` is the public URL Twilio called: behind a proxy, rebuild it from the configured public
    base URL, not from the address the proxy forwarded to.
    """
    value = _usable(header_value)
    if value is None:
        return False
    pairs = _param_pairs(params)
    # Stopping at the first match only tells a timing observer which spelling of the (public)
    # URL was signed; each comparison itself is constant-time.
    return any(
        constant_time_equals(value, twilio_signature(candidate, pairs, auth_token))
        for candidate in twilio_url_candidates(url)
    )


# --------------------------------------------------------------------------- PBX adapter


def pbx_signature(body: bytes, secret: str, timestamp: int) -> str:
    """The `X-Hotline-Signature` header value our PBX adapters send: `t=<unix>,v1=<hex>`.

    `v1` is the hex HMAC-SHA256, keyed with the shared secret, of the ASCII timestamp, a dot and
    the raw body. Binding the timestamp into the MAC lets ingest refuse replays of an old,
    captured request outside the window (inside it, deduplication by call id absorbs them).
    """
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def parse_pbx_header(header_value: str | None) -> tuple[int, list[str]] | None:
    """Split `t=<unix>,v1=<hex>[,v1=<hex>...]` into the timestamp and its signatures.

    Several `v1` entries are allowed so an adapter can sign with the old and the new secret
    while the secret is rotated. None when the header is absent or not in this shape.
    """
    value = _usable(header_value)
    if value is None:
        return None
    timestamp: int | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if timestamp is not None or not val.isascii() or not val.isdigit() or len(val) > 12:
                return None
            timestamp = int(val)
        elif key == "v1":
            signatures.append(val.lower())
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify_pbx(
    header_value: str | None,
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance_s: float = PBX_TOLERANCE_S,
) -> bool:
    """True when the header is a fresh PBX-adapter signature of this body.

    `now` is the current Unix time (from the caller's clock, so tests need not sleep); a
    timestamp more than `tolerance_s` away from it, in either direction, is refused.
    """
    parsed = parse_pbx_header(header_value)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = pbx_signature(body, secret, timestamp).rpartition("v1=")[2]
    matched = False
    for candidate in signatures:
        matched |= constant_time_equals(candidate, expected)
    return matched
