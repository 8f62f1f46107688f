"""The provider sandbox: its control API (recording, filters, long-poll, live view, faults) and
the template checks it plays for WhatsApp and ZNS."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from hotline_sandbox.server import start_sandbox
from hotline_sandbox.settings import (
    DEV_TELEGRAM_BOT_TOKEN,
    DEV_TWILIO_ACCOUNT_SID,
    DEV_TWILIO_AUTH_TOKEN,
    DEV_WHATSAPP_PHONE_NUMBER_ID,
    DEV_WHATSAPP_TOKEN,
    DEV_ZALO_ACCESS_TOKEN,
    SandboxSettings,
    WhatsAppApproval,
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


def whatsapp_template(name: str, language: str, *params: str) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if params:
        body = [{"type": "text", "text": p} for p in params]
        template["components"] = [{"type": "body", "parameters": body}]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "84905111222",
        "type": "template",
        "template": template,
    }


async def send_whatsapp(client: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    return await client.post(
        f"/graph/v19.0/{DEV_WHATSAPP_PHONE_NUMBER_ID}/messages",
        headers={"Authorization": f"Bearer {DEV_WHATSAPP_TOKEN}"},
        json=payload,
    )


async def send_zns(
    client: httpx.AsyncClient, template_id: str, data: dict[str, str]
) -> dict[str, Any]:
    answer = await client.post(
        "/zalo-business/message/template",
        headers={"access_token": DEV_ZALO_ACCESS_TOKEN},
        json={
            "phone": "84905111222",
            "template_id": template_id,
            "template_data": data,
            "tracking_id": "HUE-1",
        },
    )
    assert answer.status_code == 200  # ZNS says what went wrong in the body
    body: dict[str, Any] = answer.json()
    return body


async def test_whatsapp_templates_must_be_approved_and_get_their_parameters() -> None:
    async with start_sandbox() as sb, httpx.AsyncClient(base_url=sb.base_url) as client:
        ok = await send_whatsapp(
            client, whatsapp_template("hotline_citizen_closure", "en", "HUE-1")
        )
        assert ok.status_code == 200 and ok.json()["messages"][0]["id"].startswith("wamid.")
        courtesy = await send_whatsapp(client, whatsapp_template("hotline_citizen_courtesy", "vi"))
        assert courtesy.status_code == 200  # no parameters, no components

        unknown = await send_whatsapp(client, whatsapp_template("hotline_alert_v2", "vi", "x"))
        assert unknown.status_code == 404
        error = unknown.json()["error"]
        assert error["code"] == 132001 and error["type"] == "OAuthException"
        assert error["error_data"] == {
            "messaging_product": "whatsapp",
            "details": "template name (hotline_alert_v2) does not exist in vi",
        }
        # Officers' templates are approved in Vietnamese only.
        alert = ["HUE-1", "KHẨN CẤP", "trộm cắp", "Huế", "Mất xe", "http://x/ack/t"]
        english = await send_whatsapp(client, whatsapp_template("hotline_alert", "en", *alert))
        assert english.json()["error"]["code"] == 132001

        short = await send_whatsapp(client, whatsapp_template("hotline_alert", "vi", *alert[:2]))
        assert short.status_code == 400
        assert short.json()["error"]["code"] == 132000
        assert short.json()["error"]["error_data"]["details"] == (
            "body: number of localizable_params (2) does not match the expected number of "
            "params (6)"
        )
        header = whatsapp_template("hotline_citizen_closure", "vi", "HUE-1")
        header["template"]["components"].append(
            {"type": "header", "parameters": [{"type": "text", "text": "x"}]}
        )
        assert (await send_whatsapp(client, header)).json()["error"]["code"] == 132000
        empty = await send_whatsapp(client, whatsapp_template("hotline_citizen_closure", "vi", ""))
        assert empty.status_code == 400 and empty.json()["error"]["code"] == 131008

        sent = sb.sandbox.store.messages(provider="whatsapp")
        assert [m.text for m in sent] == [
            "[hotline_citizen_closure] HUE-1",
            "[hotline_citizen_courtesy]",
        ]
        outcomes = [a.outcome for a in sb.sandbox.store.attempts("whatsapp")]
        assert outcomes == [
            "accepted",
            "accepted",
            "unknown template",
            "unknown template",
            "template parameter count",
            "template parameter count",
            "empty template parameter",
        ]


async def test_zns_templates_must_be_approved_and_get_their_keys() -> None:
    async with start_sandbox() as sb, httpx.AsyncClient(base_url=sb.base_url) as client:
        ok = await send_zns(client, "dev-zns-citizen-receipt", {"case_id": "HUE-1"})
        assert ok["error"] == 0 and ok["data"]["msg_id"]
        unknown = await send_zns(client, "250011", {"case_id": "HUE-1"})
        assert unknown["error"] == -109
        extra = await send_zns(
            client, "dev-zns-citizen-receipt", {"case_id": "HUE-1", "text": "Cảm ơn"}
        )
        assert extra["error"] == -112 and "['case_id']" in extra["message"]
        missing = await send_zns(client, "dev-zns-directive", {"case_id": "HUE-1"})
        assert missing["error"] == -112
        assert [m.to for m in sb.sandbox.store.messages(provider="zns")] == ["84905111222"]


async def test_the_approved_templates_are_settings() -> None:
    settings = SandboxSettings(
        whatsapp_approved_templates={"ca_hue_alert": WhatsAppApproval(languages=["vi"], params=1)},
        zns_approved_templates={"250011": ["ma_vu_viec"]},
    )
    async with (
        start_sandbox(settings=settings) as sb,
        httpx.AsyncClient(base_url=sb.base_url) as client,
    ):
        assert (
            await send_whatsapp(client, whatsapp_template("ca_hue_alert", "vi", "HUE-1"))
        ).status_code == 200
        default = whatsapp_template("hotline_citizen_closure", "vi", "HUE-1")
        assert (await send_whatsapp(client, default)).json()["error"]["code"] == 132001
        assert (await send_zns(client, "250011", {"ma_vu_viec": "HUE-1"}))["error"] == 0
        assert (await send_zns(client, "dev-zns-alert", {"case_id": "HUE-1"}))["error"] == -109
