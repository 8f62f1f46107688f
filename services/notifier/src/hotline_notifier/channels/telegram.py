"""Telegram Bot API `sendMessage` (the token is part of the path)."""

from __future__ import annotations

import contextlib

from ..http_client import HttpReply, ProviderHttp
from .base import HttpChannel, OutboundMessage, SendError, SendResult


class TelegramChannel(HttpChannel):
    """Text to a chat id; 429 answers carry `parameters.retry_after` in the body."""

    name = "telegram"
    provider = "telegram"
    max_text = 4096

    def __init__(self, http: ProviderHttp, *, base_url: str, bot_token: str) -> None:
        super().__init__(http)
        self.url = f"{base_url.rstrip('/')}/bot{bot_token}/sendMessage"

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        chat_id: int | str = int(address) if address.lstrip("-").isdigit() else address
        response = await self.request(
            "POST", self.url, json={"chat_id": chat_id, "text": self.clip(message.text)}
        )
        if response.status_code >= 400:
            # Permanent whatever the body (429/408/5xx were raised as transient already).
            error = self.json_or_none(response)
            description = str(error.get("description", "")) if error else response.text
            code = error.get("error_code") if error else response.status_code
            raise SendError(
                f"telegram: {code} {description[:200]}",
                transient=False,
                status=response.status_code,
            )
        body = self.json(response)
        if not body.get("ok"):
            description = str(body.get("description", ""))[:200]
            raise SendError(
                f"telegram: {body.get('error_code')} {description}",
                transient=False,
                status=response.status_code,
            )
        result = body.get("result") or {}
        return SendResult(self.provider, str(result.get("message_id", "")))

    def retry_after(self, response: HttpReply) -> float:
        """Telegram gives a 429's wait in the body's `parameters.retry_after`."""
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return float(response.json()["parameters"]["retry_after"])
        return 1.0
