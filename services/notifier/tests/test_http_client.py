"""The providers' HTTP client (`http_client.ProviderHttp`): keep-alive, a connection the server
closed while idle, deadlines, bodies. A local asyncio or aiohttp server, no stack needed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from hotline_notifier.http_client import HttpConnectionError, HttpTimeout
from hotline_notifier.main import build_http
from hotline_notifier.settings import NotifierSettings

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, close: bool) -> None:
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        request_head = head.decode("latin-1")
        answer = json.dumps(
            {"ok": True, "got": len(body), "body": body.decode(), "head": request_head}
        ).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Count: 1\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
        )
        await writer.drain()
        if close:  # answer, then close the idle keep-alive connection
            writer.close()
            return


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    close = getattr(request, "param", "keep") == "close"
    srv = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        srv.connections += 1
        try:
            await _answer(reader, writer, close)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv.server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv
    finally:
        srv.server.close()
        await srv.server.wait_closed()


async def test_the_client_keeps_the_connection_and_reads_whole_answers(server: Server) -> None:
    client = build_http(NotifierSettings())
    try:
        for i in range(5):
            resp = await client.post(server.url + "/send", json={"n": i, "text": "Vụ việc"})
            assert resp.status_code == 200
            assert resp.headers["x-request-count"] == "1"  # header names are case-insensitive
            answer = resp.json()
            # JSON goes out compact and in UTF-8, with its content type.
            assert answer["body"] == f'{{"n":{i},"text":"Vụ việc"}}'
            assert "content-type: application/json" in answer["head"].lower()
            assert "user-agent: hotline-notifier" in answer["head"].lower()
    finally:
        await client.aclose()
    assert server.connections == 1


async def test_forms_and_basic_auth(server: Server) -> None:
    client = build_http(NotifierSettings())
    try:
        resp = await client.post(
            server.url + "/form", data={"To": "+84905111222", "Body": "Chào"}, auth=("AC1", "s")
        )
        answer = resp.json()
        assert answer["body"] == "To=%2B84905111222&Body=Ch%C3%A0o"
        head = answer["head"].lower()
        assert "content-type: application/x-www-form-urlencoded" in head
        assert "authorization: basic qumxonm=" in head  # base64("AC1:s")
    finally:
        await client.aclose()


@pytest.mark.parametrize("server", ["close"], indirect=True)
async def test_a_connection_the_server_closed_while_idle_is_replaced(server: Server) -> None:
    client = build_http(NotifierSettings())
    try:
        for _ in range(3):
            resp = await client.post(server.url + "/send", content=b"x" * 100)
            assert resp.json()["got"] == 100
            await asyncio.sleep(0.05)  # the server's FIN reaches the idle connection
    finally:
        await client.aclose()
    assert server.connections == 3


async def test_a_silent_server_is_a_timeout_and_a_closed_port_a_connection_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    client = build_http(NotifierSettings(http_read_timeout_s=0.2))
    try:
        with pytest.raises(HttpTimeout):
            await client.get(f"http://127.0.0.1:{port}/")
    finally:
        srv.close()
        await srv.wait_closed()
    try:
        with pytest.raises(HttpConnectionError):
            await client.get(f"http://127.0.0.1:{port}/")
    finally:
        await client.aclose()


async def test_a_provider_dribbling_its_answer_is_cut_off_at_the_total_deadline() -> None:
    """Each byte arrives well within the read deadline, so only the total deadline ends it."""

    async def dribble(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 1000
        await response.prepare(request)
        for _ in range(1000):  # 1,000 bytes, one every 50 ms: 50 s in all
            await response.write(b" ")
            await asyncio.sleep(0.05)
        return response

    app = web.Application()
    app.router.add_post("/send", dribble)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = build_http(
        NotifierSettings(
            http_connect_timeout_s=0.2, http_read_timeout_s=0.5, http_total_timeout_s=0.8
        )
    )
    started = time.monotonic()
    try:
        with pytest.raises(HttpTimeout):
            await client.post(f"http://127.0.0.1:{port}/send", json={"text": "Vụ việc"})
        elapsed = time.monotonic() - started
    finally:
        await client.aclose()
        await runner.cleanup()
    assert 0.7 <= elapsed < 2.0, elapsed
