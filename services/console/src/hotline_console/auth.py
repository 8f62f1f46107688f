"""Sign-in, sessions, CSRF and what each role may do in the console.

* A person signs in with their ops API token. The console asks the dispatcher who it is
  (`GET /api/v1/me`) and gives the browser a session cookie that carries the token, who they
  are, the session's CSRF token and its times, encrypted and authenticated with AES-256-GCM
  under a key derived from `CONSOLE_SESSION_SECRET` (`Sessions`, `SealedCookie`). HttpOnly,
  SameSite=Strict, Secure in production. Every page and action calls the ops API with the
  person's own token, so the dispatcher decides what they may see and do, and puts them on the
  timeline.
* Nothing of a session is kept on the server, so every replica reads every session and a
  restart or a rolling deploy signs nobody out. Sessions expire when idle
  (`CONSOLE_SESSION_IDLE_MINUTES`) and after `CONSOLE_SESSION_MAX_HOURS`, judged from the times
  inside the cookie. Signing out clears the cookie and refuses that session on this replica
  at once, and on every replica at its next call to the ops API (the dispatcher is told, and
  refuses the session every call names, views/signin.py; an open live stream asks it every
  `CONSOLE_LIVE_SESSION_CHECK_S`, views/queue.py); a token revoked at the dispatcher ends all
  of that person's sessions the same way.
* `CONSOLE_SESSION_SECRET_PREVIOUS` (optional) still opens cookies sealed before a rotation.
* CSRF: every form carries the session's token (htmx sends it as `X-CSRF-Token`); the sign-in
  form, which has no session yet, carries an HMAC of a random pre-session cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeGuard

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hotline.clock import Clock, SystemClock
from hotline_console.clients import Caller

Role = Literal["viewer", "call_taker", "officer", "staff", "director", "admin"]

ROLE_RANK: dict[str, int] = {
    "viewer": 0,
    "call_taker": 1,
    "officer": 2,
    "staff": 3,
    "director": 4,
    "admin": 5,
}

SESSION_COOKIE = "hotline_session"
FLASH_COOKIE = "hotline_flash"
PRESESSION_COOKIE = "hotline_signin"
LANG_COOKIE = "hotline_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

COOKIE_VERSION = "v1"
"""The sealed cookies' format; a new format gets a new prefix (and old cookies read as
signed out)."""
NONCE_BYTES = 12  # AES-GCM's 96-bit nonce, random per cookie
TAG_BYTES = 16
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
MAX_COOKIE_CHARS = 4000  # a browser keeps about 4096 bytes per cookie; anything longer is not ours
MAX_NAME_CHARS = 120
FLASH_TTL_S = 60
MAX_FLASH_MESSAGES = 3
MAX_FLASH_CHARS = 200


# --------------------------------------------------------------------------- identity and roles


@dataclass(frozen=True)
class Identity:
    """Who holds the token, as the dispatcher's `/me` says."""

    id: str
    role: Role
    unit: str | None = None
    name: str | None = None

    def at_least(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def display(self) -> str:
        return self.name or self.id


def _assignee(case: dict[str, object]) -> object:
    assignee = case.get("assignee")
    return assignee.get("person_id") if isinstance(assignee, dict) else None


def owns(identity: Identity, case: dict[str, object]) -> bool:
    """An officer's own case: their unit's, or assigned to them (as the dispatcher decides)."""
    return _assignee(case) == identity.id or (
        identity.unit is not None and case.get("responsible_unit") == identity.unit
    )


def case_permissions(identity: Identity, case: dict[str, object]) -> set[str]:
    """The actions to offer on a case page: the case's `allowed_actions` (from its state)
    narrowed to what this role may do. The dispatcher checks again on every call."""
    allowed = set(case.get("allowed_actions") or ())  # type: ignore[call-overload]
    staff = identity.at_least("staff")
    officer_here = identity.role == "officer" and owns(identity, case)
    callback = case.get("kind") == "callback"
    out: set[str] = set()
    if staff or officer_here:
        out |= allowed & {"acknowledge", "resolve", "note", "callback_done"}
        out.add("correct")
    if staff:
        out |= allowed & {"reassign", "close", "reopen", "directive"}
        if case.get("state") != "closed":
            out |= {"merge", "split"}
    if identity.role == "call_taker" and callback:
        out |= allowed & {"note", "callback_done"}
    if identity.role == "call_taker" and _assignee(case) == identity.id:
        # A report the Staff Office decides is held by its on-call call-taker (the dispatcher's
        # `holds`): they acknowledge it, note what the caller said, and forward it to a unit
        # once they know where it happened (`forward`: the reassign form without a person).
        out |= allowed & {"acknowledge", "note"}
        if not callback and "reassign" in allowed:
            out.add("forward")
    if staff or officer_here:
        out.add("report_directive")
    return out


def may_log_calls(identity: Identity) -> bool:
    return identity.at_least("call_taker")


def may_override_shifts(identity: Identity) -> bool:
    return identity.at_least("staff")


# --------------------------------------------------------------------------- sealed cookies


def cookie_key(secret: bytes, purpose: str) -> bytes:
    """The 256-bit AES key of one kind of cookie (`session`, `flash`), derived from
    `CONSOLE_SESSION_SECRET` with HKDF-SHA256 and a purpose label: the secret may be any length,
    and a key of one purpose opens no other cookie."""
    info = f"hotline-console {purpose} cookie {COOKIE_VERSION}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


class SealedCookie:
    """A small JSON object in a cookie, encrypted and authenticated with AES-256-GCM.

    The value is `v1.` and base64url(96-bit random nonce ‖ ciphertext ‖ 128-bit tag); the
    version and the purpose are authenticated too (associated data). `secret` seals and opens;
    `previous` (the secret before a rotation) only opens.
    """

    def __init__(self, secret: bytes, purpose: str, previous: Sequence[bytes] = ()) -> None:
        self._ciphers = [AESGCM(cookie_key(s, purpose)) for s in (secret, *previous)]
        self._aad = f"hotline-console {purpose} {COOKIE_VERSION}".encode()

    def seal(self, payload: Mapping[str, object]) -> str:
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._ciphers[0].encrypt(nonce, data, self._aad)
        return f"{COOKIE_VERSION}.{_b64(sealed)}"

    def open(self, value: str | None) -> dict[str, Any] | None:
        """The payload, or None when the value is missing, of another version, truncated,
        tampered with, sealed with an unknown key, or not a JSON object."""
        if not value or len(value) > MAX_COOKIE_CHARS:
            return None
        version, _, body = value.partition(".")
        if version != COOKIE_VERSION or not BASE64URL.fullmatch(body):
            return None
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:  # binascii.Error: truncated to a length base64 cannot have
            return None
        if len(raw) < NONCE_BYTES + TAG_BYTES or _b64(raw) != body:
            return None  # too short, or a non-canonical spelling (unused bits in the last char)
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        for cipher in self._ciphers:
            try:
                data = cipher.decrypt(nonce, sealed, self._aad)
            except InvalidTag:
                continue
            try:
                payload = json.loads(data)
            except ValueError:  # cannot happen with our own cookies; never a 500 either
                return None
            return payload if isinstance(payload, dict) else None
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signin_csrf(secret: bytes, nonce: str) -> str:
    """The sign-in form's CSRF token: bound to the random pre-session cookie."""
    return hmac.new(secret, f"sign-in:{nonce}".encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- sessions


@dataclass
class Session:
    """A signed-in person, as their session cookie carries it.

    `flash` is not in that cookie: it holds the messages this request leaves for the next page,
    which travel in their own short-lived cookie (`FLASH_COOKIE`)."""

    sid: str
    token: str = field(repr=False)
    identity: Identity
    csrf: str = field(repr=False)
    created: int
    seen: int
    flash: list[tuple[str, str]] = field(default_factory=list, compare=False)

    @property
    def caller(self) -> Caller:
        """The person and this session, for a call to the ops API."""
        return Caller(self.token, self.sid)


class SignedOut:
    """Session ids signed out on this replica, each kept until its cookie would have expired
    anyway; beyond `limit` the oldest are forgotten (a copied cookie of theirs is accepted
    again here until it expires)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._until: OrderedDict[str, float] = OrderedDict()

    def add(self, sid: str, until: float, now: float) -> None:
        self._until[sid] = until
        self._until.move_to_end(sid)
        if len(self._until) > self.limit:
            for old in [s for s, t in self._until.items() if t <= now]:
                del self._until[old]
        while len(self._until) > self.limit:
            self._until.popitem(last=False)

    def __contains__(self, sid: object) -> bool:
        return sid in self._until

    def __len__(self) -> int:
        return len(self._until)


class Sessions:
    """Sessions carried by the browser in an encrypted, authenticated cookie.

    The cookie holds the person's ops API token, who they are (as `/me` said at sign-in), the
    session's CSRF token, a random session id and two times: created and last seen. Nothing is
    kept on the server but the ids signed out here, so any replica with the same secret reads
    any session, and a restart or a rolling deploy signs nobody out.

    * Expiry is judged from the authenticated times: idle longer than `idle_s` since last seen,
      or older than `max_age_s`, is signed out.
    * Last seen is moved (and the cookie re-issued) at most every `refresh_s` seconds, so the
      htmx re-fetches and polls do not rewrite the cookie on every request; idle expiry is thus
      exact to within `refresh_s`.
    * A cookie that is missing, truncated, tampered with, sealed with an unknown key, expired
      or signed out here reads as None: signed out, never an error.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        previous: Sequence[bytes] = (),
        idle_s: float,
        max_age_s: float,
        refresh_s: float,
        max_signed_out: int,
        clock: Clock | None = None,
    ) -> None:
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.refresh_s = refresh_s
        self.signed_out = SignedOut(max_signed_out)
        self._session = SealedCookie(secret, "session", previous)
        self._flash = SealedCookie(secret, "flash", previous)
        self._clock = clock or SystemClock()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def create(self, token: str, identity: Identity) -> Session:
        now = int(self._now())
        if identity.name is not None and len(identity.name) > MAX_NAME_CHARS:
            # Shown, never compared: shortened so the cookie stays far below 4 KB.
            identity = replace(identity, name=identity.name[:MAX_NAME_CHARS])
        return Session(
            sid=secrets.token_urlsafe(16),
            token=token,
            identity=identity,
            csrf=secrets.token_urlsafe(32),
            created=now,
            seen=now,
        )

    def cookie(self, session: Session) -> str:
        """The session cookie's value (a fresh nonce each time)."""
        who = session.identity
        return self._session.seal(
            {
                "sid": session.sid,
                "tok": session.token,
                "id": who.id,
                "role": who.role,
                "unit": who.unit,
                "name": who.name,
                "csrf": session.csrf,
                "iat": session.created,
                "seen": session.seen,
            }
        )

    def read(self, cookie: str | None) -> Session | None:
        """The session in a cookie, or None (signed out): see the class's docstring."""
        payload = self._session.open(cookie)
        session = _session_of(payload) if payload is not None else None
        if session is None or self.ended(session):
            return None
        if self._now() - session.seen > self.idle_s:
            return None
        return session

    def ended(self, session: Session) -> bool:
        """Signed out on this replica, or past its maximum age: what a long-lived response
        (the live stream) re-checks. Idle expiry is not judged here: the cookie such a
        response read is as old as the response, while the person's pages move last seen."""
        return session.sid in self.signed_out or self._now() - session.created > self.max_age_s

    def touch(self, session: Session) -> bool:
        """Record activity: True when last seen moved, i.e. the cookie is to be re-issued."""
        now = int(self._now())
        if now - session.seen < self.refresh_s:
            return False
        session.seen = now
        return True

    def max_age(self, session: Session) -> int:
        """The cookie's Max-Age: what is left of the session's maximum age."""
        return max(1, math.ceil(session.created + self.max_age_s - self._now()))

    def end(self, session: Session) -> None:
        """Sign out: this replica refuses the session's cookie from now on (a copy included)."""
        self.signed_out.add(session.sid, session.created + self.max_age_s, self._now())

    def flash_cookie(self, session: Session) -> str:
        """The flash cookie's value: the session's pending messages, for its next page."""
        messages = [[k, m[:MAX_FLASH_CHARS]] for k, m in session.flash[-MAX_FLASH_MESSAGES:]]
        return self._flash.seal({"sid": session.sid, "at": int(self._now()), "m": messages})

    def read_flash(self, cookie: str | None, session: Session) -> list[tuple[str, str]]:
        """The messages of a flash cookie left for this session in the last FLASH_TTL_S
        seconds (any other: none)."""
        payload = self._flash.open(cookie)
        if payload is None or payload.get("sid") != session.sid:
            return []
        at = payload.get("at")
        if not _is_time(at) or self._now() - at > FLASH_TTL_S:
            return []
        messages = payload.get("m")
        if not isinstance(messages, list):
            return []
        return [
            (m[0], m[1])
            for m in messages
            if isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m)
        ]


def _is_time(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _session_of(payload: dict[str, Any]) -> Session | None:
    """The session of an opened cookie, or None if it is not one (only an older format could
    be: the payload is authenticated)."""
    texts = [payload.get(k) for k in ("sid", "tok", "id", "role", "csrf")]
    optional = [payload.get(k) for k in ("unit", "name")]
    created, seen = payload.get("iat"), payload.get("seen")
    if (
        not all(isinstance(v, str) and v for v in texts)
        or not all(v is None or isinstance(v, str) for v in optional)
        or payload.get("role") not in ROLE_RANK
        or not _is_time(created)
        or not _is_time(seen)
    ):
        return None
    return Session(
        sid=payload["sid"],
        token=payload["tok"],
        identity=Identity(
            id=payload["id"],
            role=payload["role"],
            unit=payload.get("unit"),
            name=payload.get("name"),
        ),
        csrf=payload["csrf"],
        created=int(created),
        seen=int(seen),
    )


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def client_address(
    peer: str | None,
    forwarded_for: str | None,
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> str:
    """The address to count failed sign-ins against.

    The peer, unless it is a trusted proxy (the ingress controller): then the X-Forwarded-For
    chain read from the right, skipping trusted proxies, gives the client (the rightmost entry
    is the one our proxy appended; what a client wrote to the left of it is not believed).
    """
    if not peer:
        return "unknown"
    if not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer


def _trusted(
    address: str, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


class AttemptLimiter:
    """Failed sign-ins per client address (see `client_address`) in the last minute; beyond the
    limit the address waits. Successful sign-ins are not counted (a shared office address is
    not locked out)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        recent = [t for t in self._failures.get(key, []) if now - t < 60]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def blocked(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return len(self._recent(key, now)) >= self.per_minute

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._failures.setdefault(key, []).append(now)
        if len(self._failures) > 10_000:
            for k in list(self._failures):
                self._recent(k, now)
