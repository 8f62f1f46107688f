"""Sandbox settings (prefix `SANDBOX_`). Credentials default to the notifier's `dev-…` values.

The sandbox is a development and test tool and is never deployed, so its "secrets" are the
same well-known placeholders the notifier uses in development; a request carrying anything else
is refused exactly as the real provider would refuse it.

The templates Meta and Zalo "approved" default to the notifier's default templates
(`hotline_notifier.provider_templates`), written out here because the sandbox plays the
providers and does not import the notifier; a notifier test keeps the two equal.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
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

# The parameters of each template (the notifier's provider_templates.TEMPLATE_PARAMS).
CASE_ALERT = ["case_id", "priority", "category", "location", "summary", "ack_url"]
CASE_INFORM = ["case_id", "priority", "category", "location", "unit", "summary"]
CALLBACK = ["case_id", "received_at", "reporter", "ack_url"]
CASE_REMINDER = ["case_id", "category", "location", "acked_at"]
DIRECTIVE = ["case_id", "issuer", "directive", "deadline"]
CITIZEN_CASE = ["case_id"]
TEMPLATES = {
    "alert": CASE_ALERT,
    "escalation": CASE_ALERT,
    "reminder": CASE_REMINDER,
    "directive": DIRECTIVE,
    "directive_reminder": DIRECTIVE,
    "inform": CASE_INFORM,
    "callback_task": CALLBACK,
    "citizen_receipt": CITIZEN_CASE,
    "citizen_courtesy": [],
    "citizen_closure": CITIZEN_CASE,
}
"""The notifier's message kinds and the parameters of their templates."""


class WhatsAppApproval(BaseModel):
    """A template approved in WhatsApp Manager: the languages it exists in, and how many body
    parameters (`{{1}}`…`{{n}}`) it takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    languages: list[str] = Field(min_length=1)
    params: int = Field(ge=0)


def default_whatsapp_templates() -> dict[str, WhatsAppApproval]:
    """`hotline_<kind>`: Vietnamese for officers, Vietnamese and English for citizens."""
    return {
        f"hotline_{kind}": WhatsAppApproval(
            languages=["vi", "en"] if kind.startswith("citizen_") else ["vi"], params=len(names)
        )
        for kind, names in TEMPLATES.items()
    }


def default_zns_templates() -> dict[str, list[str]]:
    """`dev-zns-<kind>` → the `template_data` keys it takes."""
    return {f"dev-zns-{kind.replace('_', '-')}": list(names) for kind, names in TEMPLATES.items()}


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
    whatsapp_approved_templates: dict[str, WhatsAppApproval] = Field(
        default_factory=default_whatsapp_templates,
        description=(
            'JSON: template name → {"languages": [...], "params": n}; any other template, '
            "language or parameter count is refused as WhatsApp does (132001, 132000)"
        ),
    )
    zns_approved_templates: dict[str, list[str]] = Field(
        default_factory=default_zns_templates,
        description=(
            "JSON: ZNS template id → its template_data keys; any other id, or other keys, is "
            "refused as Zalo does (-109, -112)"
        ),
    )
    telegram_bot_token: str = DEV_TELEGRAM_BOT_TOKEN
    webhook_secret: str = DEV_WEBHOOK_SECRET
    webhook_max_skew_s: int = 300
    smtp_username: str = DEV_SMTP_USERNAME
    smtp_password: str = DEV_SMTP_PASSWORD
    hang_s: float = 30.0
    max_records: int = 100_000
