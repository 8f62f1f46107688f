"""Zalo OA: consultation (cs) messages to a user id, ZNS templates to a phone that never chatted.

The ZNS template is the one configured for the message's kind (`NOTIFIER_ZALO_ZNS_TEMPLATES`),
its `template_data` the named parameters of `provider_templates.TEMPLATE_PARAMS`.

Auth is the OA access token in a header literally named `access_token`. Error `-216` means the
token expired: the channel refreshes it once (single flight, the new refresh token is stored,
since Zalo refresh tokens are single-use) and repeats the request.

Error `-213` on a consultation message means the user has not interacted with the OA within
Zalo's window: when the person's phone number is known (`OutboundMessage.phone`, from their
other contacts), the refusal names that phone (`SendError.redirect`) and the delivery engine
sends there once more on this channel, which makes it the kind's ZNS template, so they are
still reached on Zalo, and through the `zns` and that phone's rate limits, not `zalo`'s;
without one, the channel fails and the delivery falls back to the next contact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from ..http_client import HttpError, ProviderHttp
from ..phones import e164, is_phone
from ..provider_templates import MessageKind
from .base import HttpChannel, OutboundMessage, SendError, SendResult

TOKEN_INVALID = -216
NOT_INTERACTED = -213


class TokenStore(Protocol):
    """Where the current Zalo tokens are kept so every replica and restart uses the latest."""

    async def load_tokens(self, provider: str) -> dict[str, Any] | None: ...

    async def save_tokens(self, provider: str, tokens: dict[str, Any]) -> None: ...


class ZaloTokens:
    """The OA access token, refreshed on demand with the stored refresh token."""

    def __init__(
        self,
        http: ProviderHttp,
        *,
        oauth_base_url: str,
        app_id: str,
        app_secret: str,
        access_token: str,
        refresh_token: str,
        store: TokenStore | None = None,
    ) -> None:
        self.http = http
        self.url = f"{oauth_base_url.rstrip('/')}/v4/oa/access_token"
        self.app_id = app_id
        self.app_secret = app_secret
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.store = store
        self._lock = asyncio.Lock()
        self._loaded = False

    async def current(self) -> str:
        if not self._loaded and self.store is not None:
            saved = await self.store.load_tokens("zalo")
            if saved:
                self.access_token = str(saved["access_token"])
                self.refresh_token = str(saved["refresh_token"])
            self._loaded = True
        return self.access_token

    async def refresh(self, stale: str) -> str:
        """A fresh access token (only one refresh at a time; others reuse its result)."""
        async with self._lock:
            if self.access_token != stale:
                return self.access_token
            if self.store is not None:  # another replica may have refreshed already
                saved = await self.store.load_tokens("zalo")
                if saved and saved["access_token"] != stale:
                    self.access_token = str(saved["access_token"])
                    self.refresh_token = str(saved["refresh_token"])
                    return self.access_token
            try:
                response = await self.http.post(
                    self.url,
                    headers={"secret_key": self.app_secret},
                    data={
                        "refresh_token": self.refresh_token,
                        "app_id": self.app_id,
                        "grant_type": "refresh_token",
                    },
                )
                body = response.json()
            except (HttpError, ValueError) as exc:
                raise SendError(f"zalo: token refresh failed ({exc!r})", transient=True) from exc
            if not isinstance(body, dict) or "access_token" not in body:
                raise SendError(f"zalo: token refresh refused: {str(body)[:200]}", transient=False)
            self.access_token = str(body["access_token"])
            self.refresh_token = str(body.get("refresh_token") or self.refresh_token)
            if self.store is not None:
                await self.store.save_tokens(
                    "zalo",
                    {
                        "access_token": self.access_token,
                        "refresh_token": self.refresh_token,
                        "expires_in": body.get("expires_in"),
                    },
                )
            return self.access_token


class ZaloChannel(HttpChannel):
    """`POST /v3.0/oa/message/cs` for user ids; `POST /message/template` (ZNS) for phones."""

    name = "zalo"
    provider = "zalo"
    max_text = 2000

    def __init__(
        self,
        http: ProviderHttp,
        *,
        base_url: str,
        business_base_url: str,
        tokens: ZaloTokens,
        zns_templates: Mapping[MessageKind, str],
    ) -> None:
        super().__init__(http)
        self.cs_url = f"{base_url.rstrip('/')}/v3.0/oa/message/cs"
        self.zns_url = f"{business_base_url.rstrip('/')}/message/template"
        self.tokens = tokens
        self.zns_templates = dict(zns_templates)

    def provider_for(self, address: str) -> str:
        return "zns" if is_phone(address) else "zalo"

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        if is_phone(address):
            return await self._send_zns(address, message)
        payload = {
            "recipient": {"user_id": address},
            "message": {"text": self.clip(message.text)},
        }
        try:
            return await self._send(self.cs_url, payload, "zalo")
        except SendError as refused:
            if refused.code == NOT_INTERACTED and message.phone is not None:
                refused.redirect = message.phone
            raise

    async def _send_zns(self, phone: str, message: OutboundMessage) -> SendResult:
        payload = {
            "phone": e164(phone).lstrip("+"),
            "template_id": self.zns_templates[message.kind],
            "template_data": dict(self.template_values(message)),
            "tracking_id": message.tracking_id,
        }
        return await self._send(self.zns_url, payload, "zns")

    async def _send(self, url: str, payload: dict[str, Any], provider: str) -> SendResult:
        """One request, repeated once with a refreshed token if the token was refused; a Zalo
        error is a permanent `SendError` whose `code` is Zalo's error code."""
        token = await self.tokens.current()
        body = await self._post(url, payload, token)
        if body.get("error") == TOKEN_INVALID:
            token = await self.tokens.refresh(token)
            body = await self._post(url, payload, token)
        error = body.get("error")
        if error != 0:
            raise SendError(
                f"{provider}: error {error}: {str(body.get('message', ''))[:200]}",
                transient=False,
                code=error if isinstance(error, int) else None,
            )
        data = body.get("data") or {}
        return SendResult(provider, str(data.get("message_id") or data.get("msg_id") or ""))

    async def _post(self, url: str, payload: dict[str, Any], token: str) -> dict[str, Any]:
        response = await self.request("POST", url, json=payload, headers={"access_token": token})
        if response.status_code >= 400:
            raise self.refuse(response, response.text)
        return self.json(response)
