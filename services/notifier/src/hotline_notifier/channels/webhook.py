"""A generic signed webhook: JSON POST with an HMAC-SHA256 signature over timestamp + body.

Headers: `X-Hotline-Timestamp` (epoch seconds), `X-Hotline-Signature: sha256=<hex>` where the
MAC covers `<timestamp>.<raw body>` (so a captured request cannot be replayed later with a new
timestamp), and `X-Hotline-Delivery` (the idempotency key, for the receiver to deduplicate).
The contact's address is an absolute URL, or a name appended to the configured base URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from ..http_client import ProviderHttp
from .base import HttpChannel, OutboundMessage, SendResult


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel(HttpChannel):
    name = "webhook"
    provider = "webhook"
    max_text = 16_000

    def __init__(self, http: ProviderHttp, *, base_url: str, secret: str) -> None:
        super().__init__(http)
        self.base_url = base_url.rstrip("/")
        self.secret = secret

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        url = (
            address if address.startswith(("http://", "https://")) else f"{self.base_url}/{address}"
        )
        body = json.dumps(
            {
                "delivery_id": message.delivery_id,
                "case_id": message.tracking_id,
                "purpose": message.purpose,
                "language": message.language,
                "subject": message.subject,
                "text": self.clip(message.text),
                "fields": message.template_params,
            },
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        response = await self.request(
            "POST",
            url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Hotline-Timestamp": timestamp,
                "X-Hotline-Signature": sign(self.secret, timestamp, body),
                "X-Hotline-Delivery": message.delivery_id,
            },
        )
        if response.status_code >= 400:
            raise self.refuse(response, response.text)
        receipt = ""
        if response.headers.get("content-type", "").startswith("application/json"):
            receipt = str(self.json(response).get("id", ""))
        return SendResult(self.provider, receipt or message.delivery_id)
