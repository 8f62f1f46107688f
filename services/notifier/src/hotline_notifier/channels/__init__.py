"""Outbound channels: one small class per provider behind `Channel` (see base.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..http_client import ProviderHttp
from ..settings import NotifierSettings
from .base import Channel, OutboundMessage, SendError, SendResult
from .email import EmailChannel
from .sms import EsmsSms, TwilioSms
from .telegram import TelegramChannel
from .viber import ViberChannel
from .webhook import WebhookChannel
from .whatsapp import WhatsAppChannel
from .zalo import TokenStore, ZaloChannel, ZaloTokens


class ChannelRegistry:
    """Which channel objects serve a contact's channel name, in the order to try them.

    SMS has two providers (Twilio, then eSMS.vn): if the first fails, the second is tried
    before the recipient's next contact.
    """

    def __init__(self, channels: Mapping[str, Sequence[Channel]]) -> None:
        self._channels = {name: list(chs) for name, chs in channels.items()}

    def for_contact(self, channel: str) -> list[Channel]:
        return self._channels.get(channel, [])

    @property
    def names(self) -> list[str]:
        return sorted(self._channels)


def build_channels(
    settings: NotifierSettings, http: ProviderHttp, token_store: TokenStore | None = None
) -> ChannelRegistry:
    """Every channel configured from settings, sharing one HTTP client."""
    s = settings
    sms: dict[str, Channel] = {
        "twilio": TwilioSms(
            http,
            base_url=s.twilio_base_url,
            account_sid=s.twilio_account_sid,
            auth_token=s.twilio_auth_token.get_secret_value(),
            sender=s.twilio_from,
            messaging_service_sid=s.twilio_messaging_service_sid,
        ),
        "esms": EsmsSms(
            http,
            base_url=s.esms_base_url,
            api_key=s.esms_api_key.get_secret_value(),
            secret_key=s.esms_secret_key.get_secret_value(),
            brandname=s.esms_brandname,
            sms_type=s.esms_sms_type,
        ),
    }
    tokens = ZaloTokens(
        http,
        oauth_base_url=s.zalo_oauth_base_url,
        app_id=s.zalo_app_id,
        app_secret=s.zalo_app_secret.get_secret_value(),
        access_token=s.zalo_access_token.get_secret_value(),
        refresh_token=s.zalo_refresh_token.get_secret_value(),
        store=token_store,
    )
    return ChannelRegistry(
        {
            "sms": [sms[name] for name in s.sms_providers],
            "zalo": [
                ZaloChannel(
                    http,
                    base_url=s.zalo_base_url,
                    business_base_url=s.zalo_business_base_url,
                    tokens=tokens,
                    zns_templates=s.zalo_zns_templates,
                )
            ],
            "viber": [
                ViberChannel(
                    http,
                    base_url=s.viber_base_url,
                    auth_token=s.viber_auth_token.get_secret_value(),
                    sender_name=s.viber_sender_name,
                )
            ],
            "whatsapp": [
                WhatsAppChannel(
                    http,
                    base_url=s.whatsapp_base_url,
                    api_version=s.whatsapp_api_version,
                    phone_number_id=s.whatsapp_phone_number_id,
                    token=s.whatsapp_token.get_secret_value(),
                    templates=s.whatsapp_templates,
                )
            ],
            "telegram": [
                TelegramChannel(
                    http,
                    base_url=s.telegram_base_url,
                    bot_token=s.telegram_bot_token.get_secret_value(),
                )
            ],
            "email": [
                EmailChannel(
                    host=s.smtp_host,
                    port=s.smtp_port,
                    username=s.smtp_username,
                    password=s.smtp_password.get_secret_value(),
                    sender=s.smtp_from,
                    start_tls=s.smtp_starttls,
                    use_tls=s.smtp_use_tls,
                    timeout_s=s.http_read_timeout_s + s.http_connect_timeout_s,
                )
            ],
            "webhook": [
                WebhookChannel(
                    http,
                    base_url=s.webhook_base_url,
                    secret=s.webhook_signing_secret.get_secret_value(),
                )
            ],
        }
    )


__all__ = [
    "Channel",
    "ChannelRegistry",
    "OutboundMessage",
    "SendError",
    "SendResult",
    "build_channels",
]
