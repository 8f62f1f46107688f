"""WhatsApp Cloud API: free text inside the 24-hour window, an approved template outside it.

The template is the one configured for the message's kind (`NOTIFIER_WHATSAPP_TEMPLATES`), its
body parameters those of `provider_templates.TEMPLATE_PARAMS`, in that order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..http_client import HttpReply, ProviderHttp
from ..provider_templates import MessageKind, WhatsAppTemplate
from .base import HttpChannel, OutboundMessage, SendError, SendResult

OUTSIDE_WINDOW = 131047  # "re-engagement message": more than 24 h since the user wrote
RATE_LIMITED = {130429, 131056, 80007}  # throughput per number, per pair, per account


def template_text(value: str) -> str:
    """Template parameters may not contain newlines, tabs or more than 4 spaces in a row."""
    return re.sub(r"\s{2,}", " ", re.sub(r"[\n\t]+", " · ", value)).strip()[:1000]


class WhatsAppChannel(HttpChannel):
    """`POST /{version}/{phone-number-id}/messages` with a Bearer token."""

    name = "whatsapp"
    provider = "whatsapp"
    max_text = 4096

    def __init__(
        self,
        http: ProviderHttp,
        *,
        base_url: str,
        api_version: str,
        phone_number_id: str,
        token: str,
        templates: Mapping[MessageKind, WhatsAppTemplate],
    ) -> None:
        super().__init__(http)
        self.url = f"{base_url.rstrip('/')}/{api_version}/{phone_number_id}/messages"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.templates = dict(templates)

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        to = re.sub(r"\D", "", address)
        if to.startswith("0"):
            to = "84" + to[1:]
        if message.within_session:
            try:
                return await self._post(self._text(to, message))
            except SendError as exc:
                if exc.status != OUTSIDE_WINDOW:
                    raise
        return await self._post(self._template(to, message))

    def _text(self, to: str, message: OutboundMessage) -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"body": self.clip(message.text), "preview_url": False},
        }

    def _template(self, to: str, message: OutboundMessage) -> dict[str, Any]:
        template = self.templates[message.kind]
        params = [
            {"type": "text", "text": template_text(value)}
            for _, value in self.template_values(message)
        ]
        body: dict[str, Any] = {
            "name": template.name,
            "language": {"code": template.language_for(message.language)},
        }
        if params:  # a template without parameters is sent without components
            body["components"] = [{"type": "body", "parameters": params}]
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": body,
        }

    async def _post(self, payload: dict[str, Any]) -> SendResult:
        response = await self.request("POST", self.url, json=payload, headers=self.headers)
        if response.status_code >= 400:
            # A 4xx is permanent whatever its body (429/5xx were raised as transient already),
            # except a Graph error whose code says "rate limited"; a body that is not JSON
            # only describes the refusal.
            error_body = self.json_or_none(response)
            if error_body is None:
                raise self.refuse(response)
            raise self._error(response, error_body)
        body = self.json(response)
        if "error" in body:
            raise self._error(response, body)
        messages = body.get("messages") or [{}]
        return SendResult(self.provider, str(messages[0].get("id", "")))

    def _error(self, response: HttpReply, body: dict[str, Any]) -> SendError:
        error = body.get("error") or {}
        code = error.get("code") if isinstance(error, dict) else None
        detail = str(error.get("message", "")) if isinstance(error, dict) else str(error)
        if code in RATE_LIMITED:
            return SendError(
                f"whatsapp: {code} {detail[:200]}", transient=True, retry_after=6.0, status=code
            )
        return SendError(
            f"whatsapp: HTTP {response.status_code} error {code}: {detail[:200]}",
            transient=False,
            status=code if isinstance(code, int) else response.status_code,
        )
