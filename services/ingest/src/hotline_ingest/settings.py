"""Ingest settings: one object, built in `main()` from `INGEST_*` (and the shared variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from hotline.settings import HotlineSettings, is_placeholder
from hotline.signatures import is_valid_telegram_secret


class IngestSettings(HotlineSettings):
    """Every knob of the ingest service. Secrets default to `dev-…` placeholders, which the base
    class refuses when `HOTLINE_ENV=production`."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", frozen=True)

    service_name: str = "ingest"
    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)

    body_limit_bytes: int = Field(
        default=256 * 1024, gt=0, description="larger requests get 413 before being parsed"
    )
    public_base_url: str | None = Field(
        default=None,
        description=(
            "scheme://host[:port] the providers call (e.g. https://hotline.example.vn). Twilio "
            "signs the URL it called, so behind a TLS-terminating proxy the URL is rebuilt from "
            "this instead of the address the proxy forwarded to."
        ),
    )

    # Provider secrets (PROVIDERS.md says which secret each scheme uses).
    zalo_oa_secret_key: SecretStr = SecretStr("dev-zalo-oa-secret-key")
    viber_auth_token: SecretStr = SecretStr("dev-viber-auth-token")
    whatsapp_app_secret: SecretStr = SecretStr("dev-whatsapp-app-secret")
    whatsapp_verify_token: SecretStr = SecretStr("dev-whatsapp-verify-token")
    telegram_secret_token: SecretStr = SecretStr("dev-telegram-secret-token")
    twilio_auth_token: SecretStr = SecretStr("dev-twilio-auth-token")
    pbx_secret: SecretStr = SecretStr("dev-pbx-secret")
    pbx_tolerance_s: int = Field(default=300, gt=0, description="PBX signature replay window")
    desk_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"dev-call-taker": SecretStr("dev-desk-token")},
        description="call-taker id -> bearer token for /desk (JSON in INGEST_DESK_TOKENS)",
    )

    # Durability: how long we wait for the broker and the dedup store before answering 503.
    publish_timeout_s: float = Field(default=2.5, gt=0)
    dedup_timeout_s: float = Field(default=2.0, gt=0)
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After on 503 answers")
    breaker_open_s: float = Field(
        default=1.0,
        gt=0,
        description="after a broker or database failure, answer 503 at once for this long, "
        "then let one request probe the dependency",
    )
    dedup_retention_days: float = Field(default=7, gt=0)
    dedup_expiry_interval_s: float = Field(default=3600, gt=0)
    dedup_batch_size: int = Field(default=256, ge=1, description="claims per Mongo insert")
    dedup_batch_concurrency: int = Field(
        default=1,
        ge=1,
        description="inserts in flight at once: 1 suits FerretDB, whose SQLite serialises "
        "writers (measured: 2 or 4 only contend, and 4 timed claims out); raise on MongoDB",
    )

    # Flood control (in-process token buckets: per replica, see README).
    sender_burst: int = Field(default=30, ge=1, description="messages one sender may burst")
    sender_per_minute: float = Field(default=30, gt=0, description="sustained per sender")
    web_burst: int = Field(default=10, ge=1, description="web-form posts per client IP burst")
    web_per_minute: float = Field(default=20, gt=0, description="sustained per client IP")
    desk_burst: int = Field(default=60, ge=1)
    desk_per_minute: float = Field(default=120, gt=0)
    limiter_max_keys: int = Field(default=100_000, ge=100, description="buckets kept in memory")

    @field_validator("public_base_url")
    @classmethod
    def _base_url_shape(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_base_url must start with http:// or https://")
        return value

    @field_validator("telegram_secret_token")
    @classmethod
    def _telegram_secret_shape(cls, value: SecretStr) -> SecretStr:
        if not is_valid_telegram_secret(value.get_secret_value()):
            raise ValueError("telegram_secret_token must be 1-256 characters of A-Za-z0-9_-")
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_desk_tokens(self) -> IngestSettings:
        # The base validator only sees top-level SecretStr fields, not a dict of them.
        if self.is_development:
            return self
        bad = [
            who for who, tok in self.desk_tokens.items() if is_placeholder(tok.get_secret_value())
        ]
        if bad:
            raise ValueError(
                f"placeholder desk token(s) for {', '.join(sorted(bad))} are refused when "
                f"HOTLINE_ENV={self.environment}; set real values"
            )
        return self

    @property
    def inflight_window_s(self) -> float:
        """How long a fresh claim may belong to a request still publishing (see dedup.py)."""
        return self.dedup_timeout_s + self.publish_timeout_s + 5.0
