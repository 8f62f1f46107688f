"""Sandbox settings (prefix `SANDBOX_`). Credentials default to the notifier's `dev-…` values.

The sandbox is a development and test tool and is never deployed, so its "secrets" are the
same well-known placeholders the notifier uses in development; a request carrying anything else
is refused exactly as the real provider would refuse it.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_TWILIO_ACCOUNT_SID = "ACdev00000000000000000000000000000"
DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"  # noqa: S105 - development placeholder
DEV_ESMS_API_KEY = "dev-esms-api-key"
DEV_ESMS_SECRET_KEY = "dev-esms-secret-key"  # noqa: S105
DEV_ZALO_APP_ID = "dev-zalo-app-id"
DEV_ZALO_APP_SECRET = "dev-zalo-app-secret"  # noqa: S105
DEV_ZALO_ACCESS_TOKEN = "dev-zalo-access-token"  # noqa: S105
DEV_ZALO_REFRESH_TOKEN = "dev-zalo-refresh-token"  # noqa: S105
DEV_VIBER_AUTH_TOKEN = "dev-viber-auth-token"  # noqa: S105
DEV_WHATSAPP_TOKEN = "dev-whatsapp-token"  # noqa: S105
DEV_WHATSAPP_PHONE_NUMBER_ID = "109876543210"
DEV_TELEGRAM_BOT_TOKEN = "dev-123456:telegram-bot-token"  # noqa: S105
DEV_WEBHOOK_SECRET = "dev-webhook-signing-secret"  # noqa: S105
DEV_SMTP_USERNAME = "hotline"
DEV_SMTP_PASSWORD = "dev-smtp-password"  # noqa: S105


class SandboxSettings(BaseSettings):
    """Where the sandbox listens and which credentials it accepts."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8009
    smtp_port: int = 8025
    log_level: str = "warning"

    twilio_account_sid: str = DEV_TWILIO_ACCOUNT_SID
    twilio_auth_token: str = DEV_TWILIO_AUTH_TOKEN
    esms_api_key: str = DEV_ESMS_API_KEY
    esms_secret_key: str = DEV_ESMS_SECRET_KEY
    zalo_app_id: str = DEV_ZALO_APP_ID
    zalo_app_secret: str = DEV_ZALO_APP_SECRET
    zalo_access_token: str = DEV_ZALO_ACCESS_TOKEN
    zalo_refresh_token: str = DEV_ZALO_REFRESH_TOKEN
    viber_auth_token: str = DEV_VIBER_AUTH_TOKEN
    whatsapp_token: str = DEV_WHATSAPP_TOKEN
    whatsapp_phone_number_id: str = DEV_WHATSAPP_PHONE_NUMBER_ID
    whatsapp_enforce_window: bool = False
    telegram_bot_token: str = DEV_TELEGRAM_BOT_TOKEN
    webhook_secret: str = DEV_WEBHOOK_SECRET
    webhook_max_skew_s: int = 300
    smtp_username: str = DEV_SMTP_USERNAME
    smtp_password: str = DEV_SMTP_PASSWORD
    hang_s: float = 30.0
    max_records: int = 100_000
