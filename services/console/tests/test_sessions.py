"""Sessions in sealed cookies, without the stack: the cookie codec and its clock (pure), and
console apps over a fake ops API (in process, no I/O) to show what the browser sees — above all
that a session made by one replica is read by another, or after a restart, with the same secret.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import hotline_console
from hotline.clock import ManualClock
from hotline_console import metrics
from hotline_console.app import build
from hotline_console.auth import (
    FLASH_COOKIE,
    SESSION_COOKIE,
    Identity,
    SealedCookie,
    Sessions,
)
from hotline_console.live import SIGNED_OUT_EVENT
from hotline_console.settings import ConsoleSettings

SECRET = b"test-console-secret"
OTHER = b"another-console-secret"
LEADER = Identity(id="pv01-leader", role="staff", unit="pv01", name="Trưởng ca trực")
TOKEN = "tok-staff-0123456789"

IDLE_S = 600
MAX_AGE_S = 3600
REFRESH_S = 60


def sessions(
    clock: ManualClock, secret: bytes = SECRET, previous: tuple[bytes, ...] = ()
) -> Sessions:
    return Sessions(
        secret,
        previous=previous,
        idle_s=IDLE_S,
        max_age_s=MAX_AGE_S,
        refresh_s=REFRESH_S,
        max_signed_out=3,
        clock=clock,
    )


# --------------------------------------------------------------------------- the codec (pure)


def test_a_session_round_trips_through_its_encrypted_cookie() -> None:
    clock = ManualClock()
    store = sessions(clock)
    session = store.create(TOKEN, LEADER)
    cookie = store.cookie(session)
    assert cookie.startswith("v1.")
    assert TOKEN not in cookie and "pv01" not in cookie  # encrypted, not only signed
    assert "tok-staff" not in base64.urlsafe_b64decode(cookie[3:] + "==").decode("latin-1")
    assert TOKEN not in repr(session)  # never in a log line by accident
    assert store.cookie(session) != cookie  # a fresh random nonce every time
    read = store.read(cookie)
    assert read == session
    assert read is not None and read.token == TOKEN and read.identity == LEADER
    assert (read.csrf, read.created, read.seen) == (session.csrf, session.created, session.seen)


def test_the_cookie_stays_well_under_4_kb() -> None:
    clock = ManualClock()
    store = sessions(clock)
    longest = Identity(id="x" * 64, role="director", unit="u" * 64, name="Nguyễn Văn Đức " * 40)
    session = store.create("t" * 512, longest)  # the sign-in form's longest token
    assert session.identity.name is not None and len(session.identity.name) == 120
    assert len(store.cookie(session)) < 2000
    session.flash = [("error", "Không thực hiện được: " + "ữ" * 500)] * 5
    assert len(store.flash_cookie(session)) < 2500


def test_tampered_truncated_and_garbage_cookies_read_as_signed_out() -> None:
    clock = ManualClock()
    store = sessions(clock)
    cookie = store.cookie(store.create(TOKEN, LEADER))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(3, len(cookie)):  # every character of the sealed part, changed
        swapped = alphabet[(alphabet.index(cookie[i]) + 1) % len(alphabet)]
        assert store.read(cookie[:i] + swapped + cookie[i + 1 :]) is None, i
    for n in range(len(cookie)):  # every truncation
        assert store.read(cookie[:n]) is None, n
    garbage = [
        None,
        "",
        "v1",
        "v1.",
        "v2" + cookie[2:],  # another format's prefix
        cookie.replace("v1.", "", 1),
        cookie + "A",
        cookie + "+",
        "v1.!!!!",
        "v1.é" + cookie[4:],
        "v1." + "A" * 100,
        "v1." + "A" * 5000,
        "a.b.c",
        "\x00",
    ]
    for value in garbage:
        assert store.read(value) is None, value
    # A cookie sealed for another purpose (the flash cookie) is no session.
    flash = SealedCookie(SECRET, "flash").seal({"sid": "x", "tok": TOKEN})
    assert store.read(flash) is None


def test_a_cookie_sealed_with_another_secret_reads_as_signed_out() -> None:
    clock = ManualClock()
    cookie = sessions(clock, OTHER).cookie(sessions(clock, OTHER).create(TOKEN, LEADER))
    assert sessions(clock).read(cookie) is None
    assert sessions(clock, OTHER).read(cookie) is not None  # another instance, same secret


def test_the_previous_secret_opens_cookies_but_never_seals() -> None:
    clock = ManualClock()
    old = sessions(clock, OTHER)
    cookie = old.cookie(old.create(TOKEN, LEADER))
    rotated = sessions(clock, SECRET, previous=(OTHER,))
    session = rotated.read(cookie)
    assert session is not None and session.token == TOKEN
    reissued = rotated.cookie(session)
    assert sessions(clock, SECRET).read(reissued) == session  # sealed with the new secret
    assert old.read(reissued) is None
    assert sessions(clock, SECRET).read(cookie) is None  # rotation finished: old cookies out


def test_sessions_expire_when_idle_and_after_their_maximum_age() -> None:
    clock = ManualClock()
    store = sessions(clock)
    session = store.create(TOKEN, LEADER)
    cookie = store.cookie(session)
    clock.advance(IDLE_S)
    assert store.read(cookie) is not None
    clock.advance(1)
    assert store.read(cookie) is None  # idle too long
    # Active every 5 minutes: last seen moves, but the maximum age still ends it.
    session = store.create(TOKEN, LEADER)
    cookie = store.cookie(session)
    for _ in range(MAX_AGE_S // 300):
        clock.advance(300)
        read = store.read(cookie)
        assert read is not None
        assert store.touch(read)
        cookie = store.cookie(read)
        assert store.max_age(read) == max(1, MAX_AGE_S - (read.seen - read.created))
    clock.advance(1)
    assert store.read(cookie) is None  # older than the maximum age although active


def test_last_seen_moves_only_after_the_refresh_interval() -> None:
    clock = ManualClock()
    store = sessions(clock)
    session = store.create(TOKEN, LEADER)
    clock.advance(REFRESH_S - 1)
    assert not store.touch(session) and session.seen == session.created
    clock.advance(1)
    assert store.touch(session) and session.seen == session.created + REFRESH_S
    assert not store.touch(session)  # twice in one request: once
    # Idle expiry counts from the re-issued cookie's last seen.
    cookie = store.cookie(session)
    clock.advance(IDLE_S)
    assert store.read(cookie) is not None


def test_a_signed_out_session_is_refused_copies_included_and_the_list_is_bounded() -> None:
    clock = ManualClock()
    store = sessions(clock)
    mine, other = store.create(TOKEN, LEADER), store.create(TOKEN, LEADER)
    copied = store.cookie(mine)
    store.end(mine)
    assert store.read(copied) is None
    assert store.read(store.cookie(mine)) is None
    assert store.read(store.cookie(other)) is not None
    # At most max_signed_out ids: the expired go first, then the oldest.
    for _ in range(3):
        store.end(store.create(TOKEN, LEADER))
    assert len(store.signed_out) == 3 and mine.sid not in store.signed_out
    clock.advance(MAX_AGE_S + 1)
    late = store.create(TOKEN, LEADER)
    store.end(late)
    assert len(store.signed_out) == 1 and late.sid in store.signed_out


def test_flash_messages_go_to_their_own_session_for_a_minute() -> None:
    clock = ManualClock()
    store = sessions(clock)
    mine, other = store.create(TOKEN, LEADER), store.create(TOKEN, LEADER)
    for i in range(5):
        mine.flash.append(("ok", f"m{i}"))
    cookie = store.flash_cookie(mine)
    assert store.read_flash(cookie, mine) == [("ok", "m2"), ("ok", "m3"), ("ok", "m4")]
    assert store.read_flash(cookie, other) == []
    assert store.read_flash(cookie + "x", mine) == []
    assert store.read(cookie) is None  # not a session cookie
    clock.advance(61)
    assert store.read_flash(cookie, mine) == []


def test_settings_for_the_previous_secret_and_the_refresh_interval() -> None:
    assert ConsoleSettings().session_secret_previous is None
    assert ConsoleSettings(session_secret_previous="  ").session_secret_previous is None
    with pytest.raises(ValueError, match="session_secret, session_secret_previous"):
        ConsoleSettings(environment="production", session_secret_previous="dev-old")
    with pytest.raises(ValueError, match="session_secret_previous"):
        ConsoleSettings(
            environment="production",
            desk_token="x" * 32,
            session_secret="y" * 32,
            session_secret_previous="changeme-old",
        )
    rotated = ConsoleSettings(
        environment="production",
        desk_token="x" * 32,
        session_secret="y" * 32,
        session_secret_previous="z" * 32,
    )
    assert rotated.session_secret_previous is not None
    with pytest.raises(ValueError, match="shorter than session_idle_minutes"):
        ConsoleSettings(session_idle_minutes=1, session_refresh_s=60)


# --------------------------------------------------------------------------- apps over a fake API

PEOPLE = {TOKEN: {"id": "pv01-leader", "role": "staff", "unit": "pv01", "name": "Trưởng ca"}}
MISSING_CASE = "/cases/HUE-20240124-0001"  # the fake API knows no case: an error page, signed in
CANCEL = "/on-call/overrides/ovr-0001abcd/cancel"  # an action that flashes


@dataclass
class FakeOpsApi:
    """The dispatcher's ops API as far as these tests need it; tokens can be revoked, console
    sessions signed out (and the sign-out made to fail, `sign_out_down`)."""

    revoked: set[str] = field(default_factory=set)
    signed_out: dict[str, str] = field(default_factory=dict)  # session id -> until
    sign_out_down: bool = False
    me_down: bool = False
    ingest_calls: list[httpx.Request] = field(default_factory=list)

    def ingest(self, request: httpx.Request) -> httpx.Response:
        self.ingest_calls.append(request)
        return httpx.Response(202, json={"status": "accepted", "event_id": "0190-evt-000001"})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in PEOPLE or token in self.revoked:
            return httpx.Response(401, json={"detail": "unknown token"})
        session = request.headers.get("x-hotline-session")
        if session in self.signed_out:
            return httpx.Response(401, json={"detail": "this console session has signed out"})
        path = request.url.path.removeprefix("/api/v1")
        if path == "/session/sign-out" and request.method == "POST":
            if self.sign_out_down:
                return httpx.Response(503, json={"detail": "database unavailable"})
            assert session is not None, "the console names the session it signs out"
            self.signed_out[session] = json.loads(request.content)["until"]
            return httpx.Response(204)
        if path == "/me":
            if self.me_down:
                return httpx.Response(503, json={"detail": "database unavailable"})
            return httpx.Response(200, json=PEOPLE[token])
        if path == "/units":
            return httpx.Response(200, json=[])
        if path == "/stats/daily":
            return httpx.Response(200, json={"greetings": 2, "messages": 3})
        if path.startswith("/shift-overrides/"):
            return httpx.Response(200, json={"cancelled": True})
        return httpx.Response(404, json={"detail": "not found"})


@dataclass
class Replica:
    """One console app (a replica, or the same one after a restart) over the fake API."""

    app: Any
    broadcaster: Any

    def browser(self, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
        """A browser, holding `cookies` as if this host had set them (so that the console's
        Set-Cookie replaces or deletes them, as in a browser)."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://console"
        )
        for name, value in (cookies or {}).items():
            # The standard cookie jar files a host without a dot under "<host>.local".
            client.cookies.set(name, value, domain="console.local")
        return client


@pytest.fixture
def api() -> FakeOpsApi:
    return FakeOpsApi()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def replica(api: FakeOpsApi, clock: ManualClock) -> AsyncIterator[Callable[..., Replica]]:
    """Makes console apps over the same fake API and clock, with the secrets asked for."""
    clients: list[httpx.AsyncClient] = []

    def make(
        secret: str = SECRET.decode(), previous: str | None = None, **overrides: Any
    ) -> Replica:
        settings = ConsoleSettings(
            environment="test",
            session_secret=secret,
            session_secret_previous=previous,
            session_idle_minutes=IDLE_S // 60,
            session_max_hours=MAX_AGE_S // 3600,
            session_refresh_s=REFRESH_S,
            **overrides,
        )
        dispatcher = httpx.AsyncClient(
            transport=httpx.MockTransport(api), base_url="http://dispatcher"
        )
        ingest = httpx.AsyncClient(
            transport=httpx.MockTransport(api.ingest), base_url="http://ingest"
        )
        clients.extend([dispatcher, ingest])
        components = build(
            settings, dispatcher_http=dispatcher, ingest_http=ingest, live=False, clock=clock
        )
        return Replica(components.app, components.console.broadcaster)

    yield make
    for client in clients:
        await client.aclose()


async def sign_in(client: httpx.AsyncClient) -> str:
    """Sign in as a browser would; returns the session cookie's value."""
    page = await client.get("/sign-in")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    r = await client.post("/sign-in", data={"token": TOKEN, "csrf_token": csrf.group(1)})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return set_cookie(r, SESSION_COOKIE)["value"]


def set_cookie(response: httpx.Response, name: str) -> dict[str, str]:
    """The response's Set-Cookie for `name`, as attributes (value under "value")."""
    for header in response.headers.get_list("set-cookie"):
        first, *attrs = (part.strip() for part in header.split(";"))
        key, _, value = first.partition("=")
        if key == name:
            out = {"value": value.strip('"')}
            for attr in attrs:
                k, _, v = attr.partition("=")
                out[k.lower()] = v
            return out
    raise AssertionError(f"no Set-Cookie {name} in {response.headers.get_list('set-cookie')}")


def sets_cookie(response: httpx.Response, name: str) -> bool:
    return any(h.startswith(f"{name}=") for h in response.headers.get_list("set-cookie"))


async def signed_in_page(client: httpx.AsyncClient) -> httpx.Response:
    """A full page that needs a session: the error page of a case the fake API does not know."""
    page = await client.get(MISSING_CASE)
    assert page.status_code == 404 and 'data-role="staff"' in page.text, page.text[:500]
    return page


def page_csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_a_session_from_one_replica_is_accepted_by_another_and_after_a_restart(
    replica: Callable[..., Replica],
) -> None:
    first, second = replica(), replica()  # two replicas, or one before and after a restart
    async with first.browser() as client:
        cookie = await sign_in(client)
        csrf = page_csrf(await signed_in_page(client))
    async with second.browser({SESSION_COOKIE: cookie}) as client:
        page = await signed_in_page(client)
        assert page_csrf(page) == csrf  # forms made by one replica post to the other
        r = await client.post(CANCEL, data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/on-call"
    async with replica(secret=OTHER.decode()).browser({SESSION_COOKIE: cookie}) as client:
        r = await client.get(MISSING_CASE)
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
    rotated = replica(secret=OTHER.decode(), previous=SECRET.decode())
    async with rotated.browser({SESSION_COOKIE: cookie}) as client:
        await signed_in_page(client)


async def test_the_session_cookie_keeps_its_attributes(replica: Callable[..., Replica]) -> None:
    async with replica().browser() as client:
        page = await client.get("/sign-in")
        csrf = page_csrf(page)
        r = await client.post("/sign-in", data={"token": TOKEN, "csrf_token": csrf})
        attrs = set_cookie(r, SESSION_COOKIE)
    assert {"httponly", "path", "samesite", "max-age"} <= set(attrs)
    assert attrs["path"] == "/" and attrs["samesite"].lower() == "strict"
    assert attrs["max-age"] == str(MAX_AGE_S) and "secure" not in attrs  # HOTLINE_ENV=test
    assert TOKEN not in r.headers["set-cookie"]


async def test_the_cookie_is_reissued_after_the_refresh_interval_not_on_every_request(
    replica: Callable[..., Replica], clock: ManualClock
) -> None:
    console = replica()
    async with console.browser() as client:
        first = await sign_in(client)
        for _ in range(5):  # htmx re-fetches and polls within the interval: no new cookie
            clock.advance(REFRESH_S // 6)
            r = await client.get("/queue/greeting-count", headers={"HX-Request": "true"})
            assert not sets_cookie(r, SESSION_COOKIE)
        clock.advance(REFRESH_S)
        r = await client.get(MISSING_CASE)
        attrs = set_cookie(r, SESSION_COOKIE)
        assert attrs["value"] != first and attrs["httponly"] == ""
        assert int(attrs["max-age"]) == MAX_AGE_S - REFRESH_S - 5 * (REFRESH_S // 6)
        assert not sets_cookie(await client.get(MISSING_CASE), SESSION_COOKIE)
        # The live stream never re-issues it, however long since last seen.
        clock.advance(IDLE_S - 1)
        console.broadcaster.closing.set()  # the stream ends at once
        r = await client.get("/events")
        assert r.status_code == 200 and not sets_cookie(r, SESSION_COOKIE)
        # Without activity past the idle time, the re-issued cookie is signed out too.
        clock.advance(2)
        r = await client.get(MISSING_CASE)
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
    # The first cookie's last seen never moved: idle since sign-in.
    async with console.browser({SESSION_COOKIE: first}) as client:
        assert (await client.get(MISSING_CASE)).status_code == 303


async def test_signing_out_clears_the_cookie_and_refuses_a_copy_on_every_replica(
    replica: Callable[..., Replica], api: FakeOpsApi
) -> None:
    console, other = replica(), replica()
    async with console.browser() as client:
        cookie = await sign_in(client)
        csrf = page_csrf(await signed_in_page(client))
        r = await client.post("/sign-out", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/sign-in"
        cleared = set_cookie(r, SESSION_COOKIE)
        assert cleared["value"] == "" and cleared["max-age"] == "0"
        assert (await client.get(MISSING_CASE)).status_code == 303
    async with console.browser({SESSION_COOKIE: cookie}) as client:
        r = await client.get(MISSING_CASE)
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
    # The dispatcher was told, until the cookie would have expired: another replica's first
    # call for the copy is refused, which ends the session there too.
    [until] = api.signed_out.values()
    assert datetime.fromisoformat(until) > datetime.now(UTC) + timedelta(seconds=MAX_AGE_S - 60)
    async with other.browser({SESSION_COOKIE: cookie}) as client:
        r = await client.get(MISSING_CASE)
        assert r.status_code == 303 and r.headers["location"] == "/sign-in"
        assert set_cookie(r, SESSION_COOKIE)["max-age"] == "0"


STREAM_ENDED = f"event: {SIGNED_OUT_EVENT}\ndata: {{}}\n\n"
CHECK_S = 0.1


async def listen(client: httpx.AsyncClient) -> asyncio.Task[httpx.Response]:
    """Open the live stream (answered whole once it ends) and let it run a few session checks."""
    listening = asyncio.create_task(client.get("/events"))
    await asyncio.sleep(CHECK_S * 4)
    assert not listening.done(), "the stream of a session that holds goes on"
    return listening


async def test_a_live_stream_ends_once_its_session_signs_out_on_another_replica(
    replica: Callable[..., Replica],
) -> None:
    console, other = replica(), replica(live_session_check_s=CHECK_S)
    async with console.browser() as client:
        cookie = await sign_in(client)
        csrf = page_csrf(await signed_in_page(client))
        async with other.browser({SESSION_COOKIE: cookie}) as watcher:
            listening = await listen(watcher)
            await client.post("/sign-out", data={"csrf_token": csrf})
            r = await asyncio.wait_for(listening, 5)
    assert r.status_code == 200 and r.text.endswith(STREAM_ENDED), r.text[-200:]
    # Its replica now refuses the session itself; a third one opens no stream for the copy.
    async with other.browser({SESSION_COOKIE: cookie}) as client:
        assert (await client.get(MISSING_CASE)).status_code == 303
    async with replica().browser({SESSION_COOKIE: cookie}) as client:
        r = await asyncio.wait_for(client.get("/events"), 5)
        assert r.status_code == 401 and set_cookie(r, SESSION_COOKIE)["max-age"] == "0"


async def test_a_live_stream_ends_at_the_sessions_maximum_age_and_outlives_an_outage(
    replica: Callable[..., Replica], api: FakeOpsApi, clock: ManualClock
) -> None:
    """Past its maximum age a session stops receiving, though the stream read it when young;
    a dispatcher that cannot answer is not taken for a sign-out."""
    console = replica(live_session_check_s=CHECK_S)
    async with console.browser() as client:
        await sign_in(client)
        api.me_down = True
        listening = await listen(client)
        clock.advance(MAX_AGE_S + 1)
        r = await asyncio.wait_for(listening, 5)
    assert r.text.endswith(STREAM_ENDED), r.text[-200:]


def test_every_live_page_closes_its_stream_on_the_signed_out_event() -> None:
    templates = Path(hotline_console.__file__).parent / "templates"
    live_pages = [t for t in templates.glob("*.html") if "sse-connect" in t.read_text()]
    assert len(live_pages) >= 4
    for page in live_pages:
        assert f'sse-close="{SIGNED_OUT_EVENT}"' in page.read_text(), page.name


async def test_a_sign_out_the_dispatcher_cannot_record_still_holds_on_its_replica(
    replica: Callable[..., Replica], api: FakeOpsApi
) -> None:
    """The person is signed out whatever the dispatcher answers; only the other replicas, which
    it could not tell, still accept a copy (counted as a `local` sign-out, and logged)."""
    console, other = replica(), replica()
    local = metrics.SIGN_OUTS.labels("local")
    before = local._value.get()
    api.sign_out_down = True
    async with console.browser() as client:
        cookie = await sign_in(client)
        r = await client.post(
            "/sign-out", data={"csrf_token": page_csrf(await signed_in_page(client))}
        )
        assert r.status_code == 303 and r.headers["location"] == "/sign-in"
    assert local._value.get() == before + 1 and not api.signed_out
    async with console.browser({SESSION_COOKIE: cookie}) as client:
        assert (await client.get(MISSING_CASE)).status_code == 303
    async with other.browser({SESSION_COOKIE: cookie}) as client:
        await signed_in_page(client)


async def test_a_token_revoked_at_the_dispatcher_ends_the_session_on_any_replica(
    replica: Callable[..., Replica], api: FakeOpsApi
) -> None:
    console, other = replica(), replica()
    async with console.browser() as client:
        cookie = await sign_in(client)
    api.revoked.add(TOKEN)
    async with other.browser({SESSION_COOKIE: cookie}) as client:
        r = await client.get(MISSING_CASE)
        assert r.status_code == 303 and r.headers["location"] == "/sign-in"
        assert set_cookie(r, SESSION_COOKIE)["max-age"] == "0"
    api.revoked.clear()  # even if the token came back, this replica refuses that session now
    async with other.browser({SESSION_COOKIE: cookie}) as client:
        assert (await client.get(MISSING_CASE)).status_code == 303


async def test_a_revoked_token_logs_no_call_at_the_desk(
    replica: Callable[..., Replica], api: FakeOpsApi
) -> None:
    """The call desk posts to ingest with the console's own token: the person's is checked."""
    console = replica()
    call = {"caller_number": "0912345678", "summary": "Cháy nhà kiệt 5 Lê Lợi"}
    async with console.browser() as client:
        await sign_in(client)
        csrf = page_csrf(await signed_in_page(client))
        r = await client.post("/desk/calls", data={**call, "csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"].startswith("/desk?sent=")
        assert len(api.ingest_calls) == 1
        api.revoked.add(TOKEN)
        r = await client.post("/desk/calls", data={**call, "csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/sign-in"
        assert set_cookie(r, SESSION_COOKIE)["max-age"] == "0"
    assert len(api.ingest_calls) == 1


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "v1.", "v1.AAAA", "v1." + "A" * 6000, "v9.abc", "v1.%%%", '"v1.x"'],
)
async def test_a_bad_cookie_is_signed_out_never_an_error(
    replica: Callable[..., Replica], value: str
) -> None:
    async with replica().browser({SESSION_COOKIE: value, FLASH_COOKIE: value}) as client:
        r = await client.get("/")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
        assert (await client.get("/events")).status_code == 401
        assert (await client.post(CANCEL, data={"csrf_token": "x"})).status_code == 401
        assert (await client.get("/sign-in")).status_code == 200


async def test_a_tampered_session_cookie_is_signed_out(replica: Callable[..., Replica]) -> None:
    console = replica()
    async with console.browser() as client:
        cookie = await sign_in(client)
    i = len(cookie) // 2
    tampered = cookie[:i] + ("A" if cookie[i] != "A" else "B") + cookie[i + 1 :]
    async with console.browser({SESSION_COOKIE: tampered}) as client:
        r = await client.get(MISSING_CASE)
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


async def test_a_flash_message_reaches_the_next_page_once(
    replica: Callable[..., Replica],
) -> None:
    first, second = replica(), replica()
    async with first.browser() as client:
        await sign_in(client)
        csrf = page_csrf(await signed_in_page(client))
        r = await client.post(CANCEL, data={"csrf_token": csrf})
        assert r.status_code == 303
        flash = set_cookie(r, FLASH_COOKIE)
        assert flash["httponly"] == "" and flash["max-age"] == "60"
        assert flash["samesite"].lower() == "strict" and "thực hiện" not in flash["value"]
        assert not sets_cookie(r, SESSION_COOKIE)  # within the refresh interval
        session_cookie = client.cookies[SESSION_COOKIE]
        # Fragments leave it for the page.
        r = await client.get("/queue/greeting-count")
        assert not sets_cookie(r, FLASH_COOKIE)
    # The next page may come from another replica.
    cookies = {SESSION_COOKIE: session_cookie, FLASH_COOKIE: flash["value"]}
    async with second.browser(cookies) as client:
        page = await signed_in_page(client)
        assert 'class="flash flash-ok"' in page.text and "Đã thực hiện." in page.text
        assert set_cookie(page, FLASH_COOKIE)["max-age"] == "0"
        again = await signed_in_page(client)
        assert "flash-ok" not in again.text
    # Someone else's session does not show it.
    async with first.browser() as client:
        await sign_in(client)
        client.cookies.set(FLASH_COOKIE, flash["value"])
        assert "flash-ok" not in (await signed_in_page(client)).text
