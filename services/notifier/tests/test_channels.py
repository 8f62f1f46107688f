"""Each channel's wire format, checked by the provider sandbox (auth + body, like the real one).

These need no broker or database: only the sandbox, started by the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from hotline_notifier.channels import OutboundMessage, SendError, build_channels
from hotline_notifier.channels.base import Channel
from hotline_notifier.http_client import ProviderHttp
from hotline_notifier.provider_templates import MessageKind
from hotline_notifier.settings import NotifierSettings
from hotline_sandbox.server import SandboxHandle

from .conftest import ALERT_PARAMS, sandbox_fields

MESSAGE = OutboundMessage(
    subject="[KHẨN CẤP] Vụ việc HUE-20240124-0042",
    text="[KHẨN CẤP] Vụ việc HUE-20240124-0042: bạo lực tại thành phố Huế.\nXác nhận: http://x/ack/t",
    delivery_id="d" * 32,
    tracking_id="HUE-20240124-0042",
    purpose="alert",
    kind=MessageKind.ALERT,
    template_params=ALERT_PARAMS,
)


def channel(sb: SandboxHandle, http: ProviderHttp, name: str, **overrides: Any) -> Channel:
    settings = NotifierSettings(**{**sandbox_fields(sb), **overrides})
    return build_channels(settings, http).for_contact(name)[0]


async def test_twilio_sms(sandbox: SandboxHandle, http: ProviderHttp) -> None:
    result = await channel(sandbox, http, "sms").send("0905 111 222", MESSAGE)
    assert result.provider == "twilio" and result.provider_message_id.startswith("SM")
    [sent] = sandbox.sandbox.store.messages(provider="twilio")
    assert sent.to == "+84905111222"  # normalised to E.164
    assert sent.text == MESSAGE.text
    assert sent.body["From"] == "+842343822222"
    assert sent.headers["content-type"].startswith("application/x-www-form-urlencoded")


async def test_twilio_wrong_credentials_fail_permanently(
    sandbox: SandboxHandle, http: ProviderHttp
) -> None:
    ch = channel(sandbox, http, "sms", twilio_auth_token="dev-wrong")
    with pytest.raises(SendError) as err:
        await ch.send("+84905111222", MESSAGE)
    assert not err.value.transient and err.value.status == 401
    assert sandbox.sandbox.store.messages() == []


async def test_esms(sandbox: SandboxHandle, http: ProviderHttp) -> None:
    ch = channel(sandbox, http, "sms", sms_providers=["esms"])
    result = await ch.send("+84905111222", MESSAGE)
    assert result.provider == "esms"
    [sent] = sandbox.sandbox.store.messages(provider="esms")
    assert sent.to == "0905111222"
    assert sent.body["Brandname"] == "CA-TTHUE" and sent.body["SmsType"] == "2"
    assert sent.body["RequestId"] == MESSAGE.delivery_id
    assert "ApiKey" not in sent.body  # the sandbox does not keep credentials
    bad = channel(sandbox, http, "sms", sms_providers=["esms"], esms_secret_key="dev-x")
    with pytest.raises(SendError, match="CodeResult 101") as err:
        await bad.send("+84905111222", MESSAGE)
    assert not err.value.transient


async def test_zalo_consultation_message_and_zns(
    sandbox: SandboxHandle, http: ProviderHttp
) -> None:
    ch = channel(sandbox, http, "zalo")
    await ch.send("7700112233445566", MESSAGE)
    [cs] = sandbox.sandbox.store.messages(provider="zalo")
    assert cs.to == "7700112233445566" and cs.text == MESSAGE.text
    assert cs.body == {
        "recipient": {"user_id": "7700112233445566"},
        "message": {"text": MESSAGE.text},
    }
    # A phone number that never chatted with the OA gets a ZNS template.
    await ch.send("+84905111222", MESSAGE)
    [zns] = sandbox.sandbox.store.messages(provider="zns")
    assert zns.to == "84905111222"
    assert zns.body["template_data"] == MESSAGE.template_params
    assert zns.body["tracking_id"] == "HUE-20240124-0042"


async def test_zalo_expired_token_is_refreshed_once(
    sandbox: SandboxHandle, http: ProviderHttp
) -> None:
    ch = channel(sandbox, http, "zalo")
    sandbox.sandbox.inject("zalo", "token_expired")
    await ch.send("7700112233445566", MESSAGE)
    outcomes = [a.outcome for a in sandbox.sandbox.store.attempts()]
    assert outcomes == ["fault", "refreshed", "accepted"]
    # The old token keeps working at Zalo until it expires; the new one is used from now on.
    tokens = ch.tokens  # type: ignore[attr-defined]
    assert tokens.access_token.startswith("dev-zalo-at-")
    assert tokens.access_token in sandbox.sandbox.zalo_tokens


async def test_viber(sandbox: SandboxHandle, http: ProviderHttp) -> None:
    result = await channel(sandbox, http, "viber").send("aB3dE5fG7hI9jK1l==", MESSAGE)
    assert result.provider_message_id.isdigit()
    [sent] = sandbox.sandbox.store.messages(provider="viber")
    assert sent.body["sender"]["name"] == "CA Thừa Thiên Huế"
    assert sent.body["type"] == "text" and sent.body["tracking_data"] == "HUE-20240124-0042"
    sandbox.sandbox.inject("viber", "rate_limit")
    with pytest.raises(SendError) as err:
        await channel(sandbox, http, "viber").send("aB3dE5fG7hI9jK1l==", MESSAGE)
    assert err.value.transient and err.value.retry_after is not None
    wrong = channel(sandbox, http, "viber", viber_auth_token="dev-nope")
    with pytest.raises(SendError, match="status 2") as bad:
        await wrong.send("aB3dE5fG7hI9jK1l==", MESSAGE)
    assert not bad.value.transient


async def test_whatsapp_text_in_window_template_outside(
    sandbox: SandboxHandle, http: ProviderHttp
) -> None:
    sandbox.sandbox.whatsapp_enforce_window = True
    sandbox.sandbox.whatsapp_sessions.add("84912345678")
    ch = channel(sandbox, http, "whatsapp")
    from dataclasses import replace

    in_window = replace(MESSAGE, within_session=True)
    await ch.send("+84912345678", in_window)
    await ch.send("+84905111222", MESSAGE)  # an officer: no open session → template
    await ch.send("+84905111333", in_window)  # claimed in session but not: 131047 → template
    sent = sandbox.sandbox.store.messages(provider="whatsapp")
    assert [(m.to, m.kind) for m in sent] == [
        ("84912345678", "text"),
        ("84905111222", "template"),
        ("84905111333", "template"),
    ]
    assert sent[0].body["text"] == {"body": MESSAGE.text, "preview_url": False}
    template = sent[1].body["template"]
    assert template["name"] == "hotline_alert" and template["language"] == {"code": "vi"}
    params = [p["text"] for p in template["components"][0]["parameters"]]
    assert "Có người · đánh nhau" in params  # no newlines in template parameters


async def test_whatsapp_bad_token_is_permanent(sandbox: SandboxHandle, http: ProviderHttp) -> None:
    with pytest.raises(SendError) as err:
        await channel(sandbox, http, "whatsapp", whatsapp_token="dev-x").send("+849", MESSAGE)
    assert not err.value.transient


async def test_telegram_and_its_retry_after(sandbox: SandboxHandle, http: ProviderHttp) -> None:
    ch = channel(sandbox, http, "telegram")
    await ch.send("123456789", MESSAGE)
    [sent] = sandbox.sandbox.store.messages(provider="telegram")
    assert sent.body == {"chat_id": 123456789, "text": MESSAGE.text}
    sandbox.sandbox.inject("telegram", "rate_limit", retry_after=7)
    with pytest.raises(SendError) as err:
        await ch.send("123456789", MESSAGE)
    assert err.value.retry_after == 7.0
    with pytest.raises(SendError) as wrong:
        await channel(sandbox, http, "telegram", telegram_bot_token="dev-1:x").send("1", MESSAGE)
    assert not wrong.value.transient and wrong.value.status == 401


async def test_email_over_smtp(sandbox: SandboxHandle, http: ProviderHttp) -> None:
    result = await channel(sandbox, http, "email").send("tructhammuu@example.vn", MESSAGE)
    [sent] = sandbox.sandbox.store.messages(provider="smtp")
    assert sent.to == "tructhammuu@example.vn"
    assert sent.subject == MESSAGE.subject and sent.text == MESSAGE.text
    assert result.provider_message_id == f"<{MESSAGE.delivery_id}@hotline.notifier>"
    with pytest.raises(SendError) as err:
        await channel(sandbox, http, "email", smtp_password="dev-x").send("a@b.vn", MESSAGE)
    assert not err.value.transient  # 535: wrong credentials
    sandbox.sandbox.inject("smtp", "error_500")
    with pytest.raises(SendError) as temp:
        await channel(sandbox, http, "email").send("a@b.vn", MESSAGE)
    assert temp.value.transient  # 451


async def test_signed_webhook(sandbox: SandboxHandle, http: ProviderHttp) -> None:
    await channel(sandbox, http, "webhook").send("ops-room", MESSAGE)
    [sent] = sandbox.sandbox.store.messages(provider="webhook")
    assert sent.to == "ops-room" and sent.body["delivery_id"] == MESSAGE.delivery_id
    # The sandbox verified the signature; check the scheme independently too.
    body = json.dumps(sent.body, ensure_ascii=False).encode()
    ts = sent.headers["x-hotline-timestamp"]
    mac = hmac.new(b"dev-webhook-signing-secret", ts.encode() + b"." + body, hashlib.sha256)
    assert sent.headers["x-hotline-signature"] == "sha256=" + mac.hexdigest()
    assert sent.headers["x-hotline-delivery"] == MESSAGE.delivery_id
    with pytest.raises(SendError) as err:
        await channel(sandbox, http, "webhook", webhook_signing_secret="dev-other").send(
            "ops-room", MESSAGE
        )
    assert err.value.status == 401 and not err.value.transient


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("error_500", "HTTP 500"),
        ("non_json", "not JSON"),
        ("close", "connection"),
        ("timeout", "timeout"),
    ],
)
async def test_provider_misbehaviour_is_transient(
    sandbox: SandboxHandle, http: ProviderHttp, kind: str, expected: str
) -> None:
    sandbox.sandbox.inject("twilio", kind, hang_s=2)
    with pytest.raises(SendError, match=expected) as err:
        await channel(sandbox, http, "sms").send("+84905111222", MESSAGE)
    assert err.value.transient
