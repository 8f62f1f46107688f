"""The provider sandbox's control API: recording, filters, long-poll, live view, faults."""

from __future__ import annotations

import asyncio

import httpx

from hotline_sandbox.server import start_sandbox
from hotline_sandbox.settings import (
    DEV_TELEGRAM_BOT_TOKEN,
    DEV_TWILIO_ACCOUNT_SID,
    DEV_TWILIO_AUTH_TOKEN,
)


def twilio_url(base: str) -> str:
    return f"{base}/twilio/2010-04-01/Accounts/{DEV_TWILIO_ACCOUNT_SID}/Messages.json"


async def send_sms(client: httpx.AsyncClient, base: str, to: str, body: str) -> httpx.Response:
    return await client.post(
        twilio_url(base),
        auth=(DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN),
        data={"To": to, "From": "+842343822222", "Body": body},
    )


async def test_messages_are_recorded_filtered_and_cleared() -> None:
    async with start_sandbox() as sb, httpx.AsyncClient(base_url=sb.base_url) as client:
        assert (await send_sms(client, sb.base_url, "+84905111222", "một")).status_code == 201
        assert (await send_sms(client, sb.base_url, "+84905111333", "hai")).status_code == 201
        telegram = await client.post(
            f"/telegram/bot{DEV_TELEGRAM_BOT_TOKEN}/sendMessage",
            json={"chat_id": 42, "text": "ba"},
        )
        assert telegram.json()["ok"] is True
        everything = (await client.get("/sandbox/messages")).json()
        assert everything["count"] == 3
        only = (await client.get("/sandbox/messages", params={"to": "+84905111333"})).json()
        assert [m["text"] for m in only["messages"]] == ["hai"]
        sms = (await client.get("/sandbox/messages", params={"channel": "sms"})).json()
        assert sms["count"] == 2
        later = (await client.get("/sandbox/messages", params={"since_id": 2})).json()
        assert [m["provider"] for m in later["messages"]] == ["telegram"]
        assert (await client.delete("/sandbox/messages")).status_code == 200
        assert (await client.get("/sandbox/messages")).json()["count"] == 0


async def test_wrong_credentials_and_bad_bodies_are_refused_like_the_provider() -> None:
    async with start_sandbox() as sb, httpx.AsyncClient(base_url=sb.base_url) as client:
        bad_auth = await client.post(
            twilio_url(sb.base_url),
            auth=(DEV_TWILIO_ACCOUNT_SID, "dev-wrong"),
            data={"To": "+84905111222", "From": "+8423", "Body": "x"},
        )
        assert bad_auth.status_code == 401 and bad_auth.json()["code"] == 20003
        bad_to = await send_sms(client, sb.base_url, "0905111222", "not E.164")
        assert bad_to.status_code == 400 and bad_to.json()["code"] == 21211
        as_json = await client.post(
            twilio_url(sb.base_url),
            auth=(DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN),
            json={"To": "+84905111222", "Body": "x"},
        )
        assert as_json.status_code == 400  # Twilio takes form fields, not JSON
        zalo = await client.post(
            "/zalo/v3.0/oa/message/cs",
            headers={"access_token": "dev-nope"},
            json={"recipient": {"user_id": "123456789"}, "message": {"text": "x"}},
        )
        assert zalo.status_code == 200 and zalo.json()["error"] == -216
        assert (await client.get("/sandbox/messages")).json()["count"] == 0
        outcomes = [
            a["outcome"] for a in (await client.get("/sandbox/attempts")).json()["attempts"]
        ]
        assert outcomes == ["unauthorized", "invalid To", "bad body", "invalid token"]


async def test_faults_are_injected_over_http_and_consumed_in_order() -> None:
    async with start_sandbox() as sb, httpx.AsyncClient(base_url=sb.base_url) as client:
        added = await client.post(
            "/sandbox/faults",
            json={"provider": "twilio", "kind": "rate_limit", "count": 1, "retry_after": 3},
        )
        assert added.status_code == 200
        await client.post("/sandbox/faults", json={"provider": "twilio", "kind": "error_500"})
        assert len((await client.get("/sandbox/faults")).json()["faults"]) == 2
        limited = await send_sms(client, sb.base_url, "+84905111222", "x")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
        assert (await send_sms(client, sb.base_url, "+84905111222", "x")).status_code == 500
        assert (await send_sms(client, sb.base_url, "+84905111222", "x")).status_code == 201
        unknown = await client.post("/sandbox/faults", json={"provider": "pigeon", "kind": "close"})
        assert unknown.status_code == 422


async def test_long_poll_and_live_stream_see_new_messages() -> None:
    async with start_sandbox() as sb, httpx.AsyncClient(base_url=sb.base_url) as client:
        waiting = asyncio.create_task(
            client.get("/sandbox/messages/wait", params={"count": 1, "timeout_s": 5})
        )
        lines: list[str] = []

        async def watch() -> None:
            async with client.stream("GET", "/sandbox/stream") as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        lines.append(line)
                        return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)
        await send_sms(client, sb.base_url, "+84905111222", "trực tiếp")
        answer = await asyncio.wait_for(waiting, 5)
        assert answer.json()["messages"][0]["text"] == "trực tiếp"
        await asyncio.wait_for(watcher, 5)
        assert "trực tiếp" in lines[0]
