"""The providers' HTTP client: one aiohttp session behind the small interface the channels use.

Why aiohttp rather than httpx: the notifier's CPU goes mostly into provider requests (the
pipeline benchmark's profile put `HttpChannel.request` at 42 % of the notifier's busy time).
Measured on this machine against the sandbox's Twilio endpoint, 4,000 form POSTs with 8 in
flight, client process CPU only (`services/notifier/bench/bench_http_client.py`): aiohttp
0.19-0.25 ms per request, plain httpx 1.8-2.0 ms, httpx on asyncio streams instead of anyio
(the notifier's client before this one) 0.72 ms. aiohttp parses HTTP/1.1 in C and keeps a plain
connection pool.

The channels see `ProviderHttp.request` and `HttpReply` only (status, headers, body), and two
exceptions: `HttpTimeout` and `HttpConnectionError`, both `HttpError`. A request either returns
the provider's answer, whatever its status, or raises one of them.
"""

from __future__ import annotations

import base64
import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp


class HttpError(Exception):
    """The request got no HTTP answer (a network or protocol failure)."""


class HttpTimeout(HttpError):
    """No connection, or no answer, within its deadline."""


class HttpConnectionError(HttpError):
    """The connection could not be made, or broke before the answer was complete."""


@dataclass(frozen=True)
class HttpReply:
    """A provider's answer, read whole (provider answers are small JSON documents)."""

    status_code: int
    headers: Mapping[str, str]
    """Case-insensitive, as HTTP header names are."""
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        return jsonlib.loads(self.content)


class ProviderHttp:
    """One pooled HTTP/1.1 client for every provider, with connect, read and total deadlines.

    The read deadline bounds each silence; the total deadline bounds the whole request
    (waiting for a pooled connection, connecting, sending, reading the answer to its last
    byte), so a provider that dribbles its answer a byte at a time, never silent for long,
    still cannot hold a send (and its concurrency slot) beyond it.

    The aiohttp session is made on first use, inside the running event loop (the service is
    built before uvicorn starts its loop).
    """

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        total_timeout_s: float,
        max_connections: int = 200,
        user_agent: str = "hotline-notifier/0.1",
    ) -> None:
        self.timeout = aiohttp.ClientTimeout(
            total=total_timeout_s,
            connect=connect_timeout_s,
            sock_connect=connect_timeout_s,
            sock_read=read_timeout_s,
        )
        self.max_connections = max_connections
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # aiohttp sets TCP_NODELAY on its connections: a request's head and body go out
                # at once, without waiting for the server's ACK.
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0),
                timeout=self.timeout,
                headers={"User-Agent": self.user_agent},
                # Provider answers are read whole; cookies are never part of a provider API.
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> HttpReply:
        """Send one request and read its whole answer.

        `json` is sent as compact UTF-8 JSON, `data` as an urlencoded form, `content` as is;
        `auth` is HTTP Basic (user, password).
        """
        sent_headers = dict(headers or {})
        if auth is not None:
            user_password = f"{auth[0]}:{auth[1]}".encode()
            sent_headers["Authorization"] = "Basic " + base64.b64encode(user_password).decode()
        body: Any = None
        if json is not None:
            body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        elif data is not None:
            body = dict(data)
        elif content is not None:
            body = content
        try:
            async with self._client().request(
                method,
                url,
                data=body,
                headers=sent_headers,
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                return HttpReply(response.status, response.headers, payload)
        except TimeoutError as exc:  # aiohttp's Server/ConnectionTimeoutError, total deadline
            raise HttpTimeout(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise HttpConnectionError(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise HttpConnectionError(f"{type(exc).__name__}: {exc}") from exc

    async def post(self, url: str, **kwargs: Any) -> HttpReply:
        return await self.request("POST", url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> HttpReply:
        return await self.request("GET", url, **kwargs)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
