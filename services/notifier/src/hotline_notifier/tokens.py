"""Signed acknowledgement tokens: HMAC-SHA256 over (case, cycle, level, recipient, expiry, nonce).

A token is `<base64url(payload)>.<base64url(mac)>`. The recipient is inside the signed payload,
so a token cannot be edited to acknowledge as somebody else (the MAC breaks: "forged"). Expiry
is checked against the injected clock; single use is enforced by the caller with a claim on
the nonce ("replayed").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class TokenRejected(Exception):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class RejectReason(StrEnum):
    FORGED = "forged"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    WRONG_RECIPIENT = "wrong_recipient"


@dataclass(frozen=True)
class AckClaim:
    """What a valid token says: this recipient may acknowledge this alert until `expires`."""

    case_id: str
    cycle: int
    level: int
    recipient_id: str
    expires: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AckTokens:
    def __init__(self, key: str, ttl: timedelta) -> None:
        if len(key) < 16:
            raise ValueError("the ack signing key must be at least 16 characters")
        self._key = key.encode()
        self.ttl = ttl

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, b"hotline-ack-v1." + payload, hashlib.sha256).digest()

    def issue(
        self, *, case_id: str, cycle: int, level: int, recipient_id: str, now: datetime
    ) -> str:
        claim = {
            "c": case_id,
            "y": cycle,
            "l": level,
            "r": recipient_id,
            "e": int((now + self.ttl).timestamp()),
            "n": secrets.token_urlsafe(9),
        }
        payload = json.dumps(claim, separators=(",", ":"), ensure_ascii=False).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, now: datetime) -> AckClaim:
        """The token's claim, or TokenRejected(forged|expired). Replay is the caller's check."""
        try:
            payload_part, mac_part = token.split(".", 1)
            payload, mac = _unb64(payload_part), _unb64(mac_part)
        except ValueError as exc:
            raise TokenRejected(RejectReason.FORGED, "malformed token") from exc
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise TokenRejected(RejectReason.FORGED, "bad signature")
        try:
            data = json.loads(payload)
            claim = AckClaim(
                case_id=str(data["c"]),
                cycle=int(data["y"]),
                level=int(data["l"]),
                recipient_id=str(data["r"]),
                expires=int(data["e"]),
                nonce=str(data["n"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenRejected(RejectReason.FORGED, "unreadable claim") from exc
        if now.timestamp() > claim.expires:
            raise TokenRejected(RejectReason.EXPIRED, "link expired")
        return claim
