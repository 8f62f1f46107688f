"""Client CPU per provider request: the notifier's `ProviderHttp` (aiohttp) against httpx.

Why the notifier sends through aiohttp: the same form POSTs to the sandbox's Twilio endpoint,
with the same number in flight, through each client; the figure is this process's CPU per
request (the sandbox runs in its own process and is not counted). No stack needed. Run:

    .venv/bin/python services/notifier/bench/bench_http_client.py [--requests 4000] [--in-flight 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from bench_notifier import start_sandbox, stop_sandbox  # type: ignore[import-not-found]

from hotline_notifier.main import build_http
from hotline_notifier.settings import NotifierSettings


async def measure(
    send: Callable[[], Awaitable[None]], requests: int, in_flight: int
) -> tuple[float, float]:
    """(client CPU ms per request, requests/s) for `requests` sends, `in_flight` at a time."""
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            await send()

    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(one() for _ in range(requests)))
    return (time.process_time() - cpu) * 1000 / requests, requests / (time.monotonic() - wall)


async def run(requests: int, in_flight: int) -> None:
    sandbox, base = await start_sandbox()
    settings = NotifierSettings()
    url = f"{base}/twilio/2010-04-01/Accounts/{settings.twilio_account_sid}/Messages.json"
    auth = (settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
    form = {"To": "+84905111222", "From": "+84900000000", "Body": "Vụ việc HUE-1: thử " * 5}
    provider = build_http(settings)
    plain = httpx.AsyncClient(timeout=5)
    try:

        async def via_provider_http() -> None:
            answer = await provider.post(url, data=form, auth=auth)
            assert answer.status_code == 201, answer.text
            answer.json()

        async def via_httpx() -> None:
            answer = await plain.post(url, data=form, auth=auth)
            assert answer.status_code == 201, answer.text
            answer.json()

        for name, send in (("ProviderHttp (aiohttp)", via_provider_http), ("httpx", via_httpx)):
            await measure(send, min(requests, 500), in_flight)  # warm the pool and the code
            cpu_ms, rate = await measure(send, requests, in_flight)
            print(f"{name:24} {cpu_ms:.3f} ms of client CPU per request, {rate:,.0f} requests/s")
    finally:
        await provider.aclose()
        await plain.aclose()
        await stop_sandbox(sandbox)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.in_flight))


if __name__ == "__main__":
    main()
