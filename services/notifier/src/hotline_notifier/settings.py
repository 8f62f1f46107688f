"""Notifier settings (prefix `NOTIFIER_`), built once in `main()` and passed down.

Provider base URLs default to the local provider sandbox (`hotline-sandbox`, port 8009) and
credentials to its `dev-…` placeholders, which `HotlineSettings` refuses outside development.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from hotline.contracts.labels import Priority
from hotline.settings import HotlineSettings, is_placeholder

from .provider_templates import (
    MessageKind,
    WhatsAppTemplate,
    check_templates,
    default_whatsapp_templates,
    default_zns_templates,
)

SANDBOX = "http://127.0.0.1:8009"
DEFAULT_TEMPLATES = Path(__file__).parent / "config" / "templates.yaml"


class RateLimit(BaseModel):
    """A token bucket: `rate` sends per second on average, bursts of up to `burst`."""

    rate: float = Field(gt=0)
    burst: float = Field(ge=1)


def default_rate_limits() -> dict[str, RateLimit]:
    """Provider limits from ../shared/PROVIDERS.md, for all the notifier's replicas together
    (each replica enforces its share: `NotifierSettings.rate_limit_replicas`).

    Keys are `<provider>` (the whole account or sending number) and `<provider>:recipient`
    (one addressee). Limits PROVIDERS.md does not state are conservative guesses, configurable.
    """
    return {
        # Telegram: about 30 msg/s overall and 1 msg/s per chat.
        "telegram": RateLimit(rate=30, burst=30),
        "telegram:recipient": RateLimit(rate=1, burst=1),
        # WhatsApp Cloud: 80 msg/s per number; about 1 message per 6 s to the same user.
        "whatsapp": RateLimit(rate=80, burst=80),
        "whatsapp:recipient": RateLimit(rate=1 / 6, burst=2),
        # Viber: 100 messages per user per hour without a reply.
        "viber:recipient": RateLimit(rate=100 / 3600, burst=100),
        # Zalo OA: 8 *free* replies within 48 h per user, then the OA's paid "proactive" quota
        # (a cost, not a throughput limit, so not enforced here); throughput is a guess.
        "zalo": RateLimit(rate=50, burst=100),
        # Not stated in PROVIDERS.md (account-level throughput): configurable.
        "twilio": RateLimit(rate=100, burst=200),
        "esms": RateLimit(rate=50, burst=100),
        "zns": RateLimit(rate=50, burst=100),
        "smtp": RateLimit(rate=20, burst=40),
        "webhook": RateLimit(rate=200, burst=400),
    }


class NotifierSettings(HotlineSettings):
    """Everything the notifier reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", frozen=True)

    service_name: str = "notifier"
    host: str = "127.0.0.1"
    port: int = 8004
    consumer_group: str = "notifier"
    # Both measured with services/notifier/bench/bench_notifier.py (README "Throughput"):
    # 8 sends / 64 decisions 776 alerts/s, 32 / 128 1,030, 32 / 256 1,130.
    max_concurrent_sends: int = Field(
        default=32, ge=1, description="provider requests in flight, all providers together"
    )
    max_in_flight: int = Field(
        default=256, ge=1, description="decisions of different cases processed at once"
    )
    insert_window_ms: float = Field(
        default=3.0,
        ge=0,
        description="a claim or alert insert with no write under way waits this long for others "
        "to share its insert_many (fewer database commands under load; 0: write at once)",
    )
    max_partition_fetch_bytes: int = Field(
        default=64 * 1024, ge=16 * 1024, description="per partition and fetch (a poll mixes them)"
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8004", description="where officers' ack links point"
    )

    # Acknowledgement links
    ack_signing_key: SecretStr = SecretStr("dev-notifier-ack-signing-key")
    ack_token_ttl_s: int = Field(default=24 * 3600, gt=0)

    # Escalation, quiet hours, reminders
    scheduler_interval_s: float = Field(default=1.0, gt=0)
    scheduler_batch: int = Field(default=200, gt=0)
    scheduler_sweep_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "the least time between two reads of every open alert (to learn of the timers "
            "other replicas wrote); a slow read waits ten times its duration instead"
        ),
    )
    step_lease_s: float = Field(
        default=60.0, gt=0, description="a claimed step not finished by then is taken over"
    )
    quiet_hours_start: time = time(22, 0)
    quiet_hours_end: time = time(6, 0)
    quiet_hours_priorities: list[Priority] = Field(default=[Priority.P3, Priority.P4])
    reminder_interval_s: int = Field(default=3600, gt=0)
    max_reminders: int = Field(default=24, ge=0)
    top_level_repeats: int = Field(default=3, ge=0)
    default_timeout_s: int = Field(default=300, gt=0)
    retention_days: int = Field(default=30, gt=0)

    # Delivery reliability
    http_connect_timeout_s: float = Field(default=3.0, gt=0)
    http_read_timeout_s: float = Field(
        default=5.0, gt=0, description="the longest silence while waiting for an answer"
    )
    http_total_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "the deadline of one provider request, from connecting to the answer's last byte: "
            "a provider that keeps sending a byte now and then cannot hold a send longer"
        ),
    )
    send_attempts: int = Field(default=3, ge=1, description="tries per channel before fallback")
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    max_retry_after_s: float = Field(
        default=30.0, description="a longer Retry-After fails the channel and falls back"
    )
    max_rate_wait_s: float = Field(
        default=10.0, description="waiting longer than this for a rate-limit token falls back"
    )
    rate_limits: dict[str, RateLimit] = Field(default_factory=default_rate_limits)
    rate_limit_replicas: int = Field(
        default=1,
        ge=1,
        description=(
            "how many notifier replicas may send at once (the autoscaler's maximum): each "
            "enforces 1/N of every limit, so together they stay within the provider's"
        ),
    )
    templates_path: Path = DEFAULT_TEMPLATES

    # SMS: Twilio first, eSMS.vn as the second provider
    sms_providers: list[Literal["twilio", "esms"]] = Field(default=["twilio", "esms"])
    twilio_base_url: str = f"{SANDBOX}/twilio"
    twilio_account_sid: str = "ACdev00000000000000000000000000000"
    twilio_auth_token: SecretStr = SecretStr("dev-twilio-auth-token")
    twilio_from: str = "+842343822222"
    twilio_messaging_service_sid: str | None = None
    esms_base_url: str = f"{SANDBOX}/esms"
    esms_api_key: SecretStr = SecretStr("dev-esms-api-key")
    esms_secret_key: SecretStr = SecretStr("dev-esms-secret-key")
    esms_brandname: str = "CA-TTHUE"
    esms_sms_type: Literal["2", "8"] = "2"

    # Zalo OA (consultation messages), ZNS templates, OAuth refresh
    zalo_base_url: str = f"{SANDBOX}/zalo"
    zalo_oauth_base_url: str = f"{SANDBOX}/zalo-oauth"
    zalo_business_base_url: str = f"{SANDBOX}/zalo-business"
    zalo_app_id: str = "dev-zalo-app-id"
    zalo_app_secret: SecretStr = SecretStr("dev-zalo-app-secret")
    zalo_access_token: SecretStr = SecretStr("dev-zalo-access-token")
    zalo_refresh_token: SecretStr = SecretStr("dev-zalo-refresh-token")
    zalo_zns_templates: dict[MessageKind, Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=default_zns_templates,
        description=(
            "JSON: message kind → the ZNS template id Zalo assigned on approval, for every "
            "kind (alert, escalation, reminder, directive, directive_reminder, inform, "
            "callback_task, citizen_receipt, citizen_courtesy, citizen_closure); each "
            "template takes the named parameters of provider_templates.TEMPLATE_PARAMS "
            "(README, 'Provider templates'); kinds with the same parameters may share one"
        ),
    )

    # Viber
    viber_base_url: str = f"{SANDBOX}/viber"
    viber_auth_token: SecretStr = SecretStr("dev-viber-auth-token")
    viber_sender_name: str = Field(default="CA Thừa Thiên Huế", max_length=28)

    # WhatsApp Cloud API
    whatsapp_base_url: str = f"{SANDBOX}/graph"
    whatsapp_api_version: str = "v19.0"
    whatsapp_phone_number_id: str = "109876543210"
    whatsapp_token: SecretStr = SecretStr("dev-whatsapp-token")
    whatsapp_templates: dict[MessageKind, WhatsAppTemplate] = Field(
        default_factory=default_whatsapp_templates,
        description=(
            'JSON: message kind → {"name": …, "languages": ["vi", …]}, the approved template '
            "sent outside the 24-hour window, for every kind (as for ZNS); each takes the "
            "positional parameters of provider_templates.TEMPLATE_PARAMS, in order; the "
            "message's language is used when the template is approved in it, else the first"
        ),
    )

    # Telegram
    telegram_base_url: str = f"{SANDBOX}/telegram"
    telegram_bot_token: SecretStr = SecretStr("dev-123456:telegram-bot-token")

    # E-mail
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str = "hotline"
    smtp_password: SecretStr = SecretStr("dev-smtp-password")
    smtp_from: str = "Đường dây nóng CA tỉnh <hotline@congan.thuathienhue.gov.vn>"
    smtp_starttls: bool = False
    smtp_use_tls: bool = False

    # Generic signed webhook
    webhook_base_url: str = f"{SANDBOX}/webhook"
    webhook_signing_secret: SecretStr = SecretStr("dev-webhook-signing-secret")

    @field_validator("public_base_url", "twilio_base_url", "esms_base_url", "zalo_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("zalo_zns_templates")
    @classmethod
    def _zns_template_per_kind(cls, value: dict[MessageKind, str]) -> dict[MessageKind, str]:
        check_templates(value, lambda template_id: template_id, "ZNS template")
        return value

    @field_validator("whatsapp_templates")
    @classmethod
    def _whatsapp_template_per_kind(
        cls, value: dict[MessageKind, WhatsAppTemplate]
    ) -> dict[MessageKind, WhatsAppTemplate]:
        check_templates(value, lambda template: template.name, "WhatsApp template")
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_zns_templates(self) -> NotifierSettings:
        """The `dev-zns-*` defaults are ids no Zalo account has approved: outside development
        every ZNS send would be refused, so the service refuses to start with them instead."""
        if self.is_development:
            return self
        bad = sorted(
            kind.value for kind, tid in self.zalo_zns_templates.items() if is_placeholder(tid)
        )
        if bad:
            raise ValueError(
                f"placeholder ZNS template id(s) for {', '.join(bad)} are refused when "
                f"HOTLINE_ENV={self.environment}; set NOTIFIER_ZALO_ZNS_TEMPLATES to the ids "
                "Zalo approved"
            )
        return self

    @model_validator(mode="after")
    def _total_deadline_allows_a_connection(self) -> NotifierSettings:
        if self.http_total_timeout_s <= self.http_connect_timeout_s:
            raise ValueError(
                f"http_total_timeout_s ({self.http_total_timeout_s}) must exceed "
                f"http_connect_timeout_s ({self.http_connect_timeout_s}): the deadline covers "
                "connecting too"
            )
        return self
