"""Signed sample deliveries for every ingest endpoint, exactly as each provider would send them.

For tests, the benchmark and simulators: `Samples(settings).viber(text="…")` returns the path,
headers and raw body of a delivery signed with the secrets in `settings` (the same functions in
`hotline.signatures` the providers' schemes are verified with). Ids default to fresh random
values, so two calls are two deliveries; pass the same id to model a provider's retry.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from hotline import signatures
from hotline_ingest.settings import IngestSettings


@dataclass(frozen=True)
class Delivery:
    """One HTTP request to ingest."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"

    def with_headers(self, **headers: str) -> Delivery:
        merged = {**self.headers}
        for name, value in headers.items():
            merged[name.replace("_", "-")] = value
        return Delivery(self.path, self.body, merged, self.method)


def _json(data: object) -> bytes:
    # Providers send UTF-8 JSON with non-ASCII characters as they are, no spaces.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _uid(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex


class Samples:
    """Builders of signed deliveries, one per channel."""

    def __init__(self, settings: IngestSettings, base_url: str = "http://ingest.test") -> None:
        self.settings = settings
        # Twilio signs the URL it called: the public base URL when ingest is behind a proxy.
        self.public_base = settings.public_base_url or base_url.rstrip("/")

    # ------------------------------------------------------------------ Zalo

    def zalo(
        self,
        *,
        msg_id: str | None = None,
        text: str | None = "Tôi cần hỗ trợ",
        user_id: str = "8800112233445566",
        event_name: str = "user_send_text",
        timestamp_ms: int = 1_718_000_000_123,
        attachments: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Delivery:
        message: dict[str, Any] = {"msg_id": msg_id or _uid("zmsg")}
        if text is not None:
            message["text"] = text
        if attachments is not None:
            message["attachments"] = attachments
        data: dict[str, Any] = {
            "app_id": "1234567890123456789",
            "event_name": event_name,
            "sender": {"id": user_id},
            "recipient": {"id": "5577889900112233"},
            "message": message,
            "timestamp": str(timestamp_ms),
            "user_id_by_app": "4455667788990011",
            **(extra or {}),
        }
        return self.zalo_raw(_json(data), data["app_id"], data["timestamp"])

    def zalo_raw(self, body: bytes, app_id: str, timestamp: str) -> Delivery:
        secret = self.settings.zalo_oa_secret_key.get_secret_value()
        sig = signatures.zalo_signature(app_id, body, timestamp, secret)
        return Delivery(
            "/webhooks/zalo",
            body,
            {"Content-Type": "application/json", signatures.ZALO_HEADER: sig},
        )

    # ------------------------------------------------------------------ Viber

    def viber(
        self,
        *,
        message_token: int | None = None,
        text: str | None = "Báo tin khẩn",
        sender_id: str = "aB3dE5fG7hI9jK1l==",
        name: str = "Nguyen A",
        timestamp_ms: int = 1_718_000_000_123,
        message: dict[str, Any] | None = None,
        event: str = "message",
    ) -> Delivery:
        data: dict[str, Any] = {"event": event, "timestamp": timestamp_ms}
        if event == "message":
            data.update(
                {
                    "chat_hostname": "SN-CHAT-05_",
                    "message_token": message_token or (uuid.uuid4().int >> 65) + 2**62,
                    "sender": {
                        "id": sender_id,
                        "name": name,
                        "language": "vi",
                        "country": "VN",
                        "api_version": 10,
                    },
                    "message": message or {"type": "text", "text": text},
                    "silent": False,
                }
            )
        elif event == "webhook":
            data["message_token"] = message_token or 4912661846655238145
        return self.viber_raw(_json(data))

    def viber_raw(self, body: bytes) -> Delivery:
        sig = signatures.viber_signature(body, self.settings.viber_auth_token.get_secret_value())
        return Delivery(
            "/webhooks/viber",
            body,
            {"Content-Type": "application/json", signatures.VIBER_HEADER: sig},
        )

    # ------------------------------------------------------------------ WhatsApp

    @staticmethod
    def whatsapp_message(
        *,
        wamid: str | None = None,
        wa_id: str = "84912345678",
        text: str = "Có trộm",
        timestamp_s: int = 1_718_000_000,
        **content: Any,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "from": wa_id,
            "id": wamid or _uid("wamid.HBgL"),
            "timestamp": str(timestamp_s),
            "type": content.pop("type", "text"),
        }
        if message["type"] == "text":
            message["text"] = {"body": text}
        message.update(content)
        return message

    def whatsapp(
        self,
        *,
        messages: list[dict[str, Any]] | None = None,
        statuses: list[dict[str, Any]] | None = None,
        entries: int = 1,
        name: str = "Tran B",
    ) -> Delivery:
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "84281234567",
                "phone_number_id": "109876543210",
            },
            "contacts": [{"profile": {"name": name}, "wa_id": "84912345678"}],
        }
        if messages is None and statuses is None:
            messages = [self.whatsapp_message()]
        if messages is not None:
            value["messages"] = messages
        if statuses is not None:
            value["statuses"] = statuses
        data = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "100200300400500", "changes": [{"field": "messages", "value": value}]}]
            * entries,
        }
        return self.whatsapp_raw(_json(data))

    def whatsapp_raw(self, body: bytes) -> Delivery:
        secret = self.settings.whatsapp_app_secret.get_secret_value()
        return Delivery(
            "/webhooks/whatsapp",
            body,
            {
                "Content-Type": "application/json",
                signatures.WHATSAPP_HEADER: signatures.whatsapp_signature(body, secret),
            },
        )

    # ------------------------------------------------------------------ Telegram

    def telegram(
        self,
        *,
        update_id: int | None = None,
        text: str | None = "Có tai nạn ở cầu Trường Tiền",
        user_id: int = 7_001_002_003,
        date_s: int = 1_718_000_000,
        message: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
    ) -> Delivery:
        msg: dict[str, Any] = {
            "message_id": 42,
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": "Lan",
                "last_name": "Nguyen",
                "language_code": "vi",
            },
            "chat": {"id": user_id, "type": "private"},
            "date": date_s,
        }
        if text is not None:
            msg["text"] = text
        msg.update(message or {})
        data = update or {"update_id": update_id or uuid.uuid4().int % 10**9, "message": msg}
        return self.telegram_raw(_json(data))

    def telegram_raw(self, body: bytes) -> Delivery:
        token = self.settings.telegram_secret_token.get_secret_value()
        return Delivery(
            "/webhooks/telegram",
            body,
            {"Content-Type": "application/json", signatures.TELEGRAM_HEADER: token},
        )

    # ------------------------------------------------------------------ Twilio

    def twilio_sms(
        self,
        *,
        message_sid: str | None = None,
        body: str = "Cướp giật điện thoại ở Đập Đá",
        from_: str = "+84912345678",
        media: list[tuple[str, str]] | None = None,
        extra: dict[str, str] | None = None,
    ) -> Delivery:
        params: dict[str, str] = {
            "MessageSid": message_sid or _uid("SM")[:34],
            "AccountSid": "AC" + "0" * 32,
            "MessagingServiceSid": "MG" + "1" * 32,
            "From": from_,
            "To": "+842343822113",
            "Body": body,
            "NumMedia": str(len(media or [])),
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        for i, (url, mime) in enumerate(media or []):
            params[f"MediaUrl{i}"] = url
            params[f"MediaContentType{i}"] = mime
        params.update(extra or {})
        return self.twilio_form("/webhooks/twilio/sms", params)

    def twilio_voice(
        self,
        *,
        call_sid: str | None = None,
        call_status: str = "no-answer",
        from_: str = "+84912345678",
        extra: dict[str, str] | None = None,
    ) -> Delivery:
        params: dict[str, str] = {
            "CallSid": call_sid or _uid("CA")[:34],
            "AccountSid": "AC" + "0" * 32,
            "From": from_,
            "To": "+842343822113",
            "CallStatus": call_status,
            "Direction": "inbound",
            "CallDuration": "0",
            "Timestamp": "Mon, 10 Jun 2024 06:13:20 +0000",
            "SequenceNumber": "2",
            "ApiVersion": "2010-04-01",
        }
        params.update(extra or {})
        return self.twilio_form("/webhooks/twilio/voice", params)

    def twilio_form(self, path: str, params: dict[str, str], url: str | None = None) -> Delivery:
        """A Twilio form post signed over `url` (default: the public URL of `path`)."""
        token = self.settings.twilio_auth_token.get_secret_value()
        signed_url = url or self.public_base + path
        return Delivery(
            path,
            urlencode(params).encode(),
            {
                "Content-Type": "application/x-www-form-urlencoded",
                signatures.TWILIO_HEADER: signatures.twilio_signature(signed_url, params, token),
            },
        )

    # ------------------------------------------------------------------ PBX

    def pbx(
        self,
        *,
        call_id: str | None = None,
        outcome: str = "missed",
        pbx: str = "asterisk",
        caller: str = "0912345678",
        signed_at: int | None = None,
        **fields: Any,
    ) -> Delivery:
        data: dict[str, Any] = {
            "pbx": pbx,
            "call_id": call_id or f"{int(time.time())}.{uuid.uuid4().int % 10**6}",
            "outcome": outcome,
            "caller": caller,
            "called": "02343822113",
        }
        if pbx == "asterisk":
            data["timestamp"] = "2024-06-10T13:33:20.123+0700"
        else:
            data["event_date_timestamp"] = 1_718_000_000_123_456
        data.update(fields)
        return self.pbx_raw(_json(data), signed_at)

    def pbx_raw(self, body: bytes, signed_at: int | None = None) -> Delivery:
        secret = self.settings.pbx_secret.get_secret_value()
        stamp = int(time.time()) if signed_at is None else signed_at
        return Delivery(
            "/webhooks/pbx",
            body,
            {
                "Content-Type": "application/json",
                signatures.PBX_HEADER: signatures.pbx_signature(body, secret, stamp),
            },
        )

    # ------------------------------------------------------------------ web form, desk

    def web(self, *, submission_id: str | None = None, **fields: Any) -> Delivery:
        data: dict[str, Any] = {
            "submission_id": submission_id or _uid("web"),
            "text": "Có nhóm thanh niên đua xe trên đường Lê Duẩn",
            "name": "Nguyễn Văn An",
            "phone": "0912345678",
            "place": "Đường Lê Duẩn, phường Phú Thuận",
            **fields,
        }
        return Delivery("/webhooks/web", _json(data), {"Content-Type": "application/json"})

    def desk(
        self, *, summary_id: str | None = None, call_taker: str | None = None, **fields: Any
    ) -> Delivery:
        tokens = self.settings.desk_tokens
        who = call_taker or next(iter(tokens))
        data: dict[str, Any] = {
            "summary_id": summary_id or _uid("cs"),
            "caller_number": "0912345678",
            "summary": "Người gọi báo cháy nhà kho, khói lớn",
            "place": "Kiệt 12 Phan Đình Phùng",
            "call_id": "1718000000.42",
            **fields,
        }
        return Delivery(
            "/desk/call-summaries",
            _json(data),
            {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {tokens[who].get_secret_value()}",
            },
        )
