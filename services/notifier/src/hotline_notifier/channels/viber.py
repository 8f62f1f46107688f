"""Viber REST bot API `send_message` (header `X-Viber-Auth-Token`)."""

from __future__ import annotations

from ..http_client import ProviderHttp
from .base import HttpChannel, OutboundMessage, SendError, SendResult

TOO_MANY_REQUESTS = 12


class ViberChannel(HttpChannel):
    """Text to a Viber user id; `status` 0 is success, 12 is "too many requests"."""

    name = "viber"
    provider = "viber"
    max_text = 7000  # the request must stay under 30 KB

    def __init__(
        self, http: ProviderHttp, *, base_url: str, auth_token: str, sender_name: str
    ) -> None:
        super().__init__(http)
        self.url = f"{base_url.rstrip('/')}/pa/send_message"
        self.auth_token = auth_token
        self.sender_name = sender_name[:28]

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        payload = {
            "receiver": address,
            "min_api_version": 1,
            "sender": {"name": self.sender_name},
            "tracking_data": message.tracking_id[:4000],
            "type": "text",
            "text": self.clip(message.text),
        }
        response = await self.request(
            "POST", self.url, json=payload, headers={"X-Viber-Auth-Token": self.auth_token}
        )
        if response.status_code >= 400:
            raise self.refuse(response, response.text)
        body = self.json(response)
        status = body.get("status")
        if status == TOO_MANY_REQUESTS:
            raise SendError("viber: status 12 too many requests", transient=True, retry_after=1.0)
        if status != 0:
            raise SendError(
                f"viber: status {status} {str(body.get('status_message', ''))[:200]}",
                transient=False,
            )
        # message_token is a 64-bit integer: keep it as text.
        return SendResult(self.provider, str(body.get("message_token", "")))
