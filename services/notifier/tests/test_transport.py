"""The providers' HTTP client on asyncio streams (`transport.AsyncioBackend`): keep-alive, a
connection the server closed while idle, deadlines. A local asyncio server, no stack needed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from hotline_notifier.main import build_http
from hotline_notifier.settings import NotifierSettings
from hotline_notifier.transport import AsyncioBackend

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
        answer = b'{"ok":true,"got":%d}' % len(body)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
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


def _backend(client: httpx.AsyncClient) -> object:
    return client._transport._pool._network_backend  # type: ignore[attr-defined]


async def test_the_client_uses_asyncio_streams_and_keeps_the_connection(server: Server) -> None:
    client = build_http(NotifierSettings())
    try:
        assert isinstance(_backend(client), AsyncioBackend)
        for i in range(5):
            resp = await client.post(server.url + "/send", json={"n": i})
            assert resp.status_code == 200
            assert resp.json()["ok"] is True
    finally:
        await client.aclose()
    assert server.connections == 1


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


async def test_a_silent_server_is_a_read_timeout_and_a_closed_port_a_connect_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    client = build_http(NotifierSettings(http_read_timeout_s=0.2))
    try:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://127.0.0.1:{port}/")
    finally:
        srv.close()
        await srv.wait_closed()
    try:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
    finally:
        await client.aclose()
