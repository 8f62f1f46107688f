"""Sign-in, sessions, CSRF and what each role may do in the console.

* A person signs in with their ops API token. The console asks the dispatcher who it is
  (`GET /api/v1/me`) and keeps the token in a server-side session; the browser only holds a
  random session id signed with `CONSOLE_SESSION_SECRET`, in an HttpOnly, SameSite=Strict
  cookie (Secure in production). Every page and action calls the ops API with the person's own
  token, so the dispatcher decides what they may see and do, and puts them on the timeline.
* Sessions are in this replica's memory: a restart signs everyone out, and several replicas
  need sticky sessions (cookie affinity at the ingress). They expire when idle and after
  `CONSOLE_SESSION_MAX_HOURS`.
* CSRF: every form carries the session's token (htmx sends it as `X-CSRF-Token`); the sign-in
  form, which has no session yet, carries an HMAC of a random pre-session cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

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
PRESESSION_COOKIE = "hotline_signin"
LANG_COOKIE = "hotline_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


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


# --------------------------------------------------------------------------- cookie signing


def sign(secret: bytes, value: str) -> str:
    mac = hmac.new(secret, value.encode(), hashlib.sha256).digest()
    return f"{value}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def unsign(secret: bytes, signed: str | None) -> str | None:
    """The value of a signed cookie, or None when it is missing or was tampered with."""
    if not signed or "." not in signed:
        return None
    value, _, _ = signed.rpartition(".")
    if hmac.compare_digest(sign(secret, value), signed):
        return value
    return None


def signin_csrf(secret: bytes, nonce: str) -> str:
    """The sign-in form's CSRF token: bound to the random pre-session cookie."""
    return hmac.new(secret, f"sign-in:{nonce}".encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- sessions


@dataclass
class Session:
    sid: str
    token: str = field(repr=False)
    identity: Identity
    csrf: str = field(repr=False)
    created: float
    seen: float
    flash: list[tuple[str, str]] = field(default_factory=list)


class SessionStore:
    """Sessions in memory, oldest dropped beyond `max_sessions`; ids are 256-bit random."""

    def __init__(
        self,
        idle_s: float,
        max_age_s: float,
        max_sessions: int,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._now = now or time.time

    def create(self, token: str, identity: Identity) -> Session:
        now = self._now()
        session = Session(
            sid=secrets.token_urlsafe(32),
            token=token,
            identity=identity,
            csrf=secrets.token_urlsafe(32),
            created=now,
            seen=now,
        )
        self._sessions[session.sid] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def get(self, sid: str | None) -> Session | None:
        if sid is None:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = self._now()
        if now - session.seen > self.idle_s or now - session.created > self.max_age_s:
            self._sessions.pop(sid, None)
            return None
        session.seen = now
        self._sessions.move_to_end(sid)
        return session

    def delete(self, sid: str) -> None:
        self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)


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
