"""Console settings: the shared infrastructure fields plus `CONSOLE_*` variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from hotline.settings import HotlineSettings


class ConsoleSettings(HotlineSettings):
    """Environment variables `CONSOLE_*` (and the shared ones, see hotline.settings).

    Secrets default to `dev-…` placeholders, which the base class refuses when
    `HOTLINE_ENV=production`.
    """

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore", frozen=True)

    service_name: str = "console"
    host: str = "127.0.0.1"  # Kubernetes sets CONSOLE_HOST=0.0.0.0
    port: int = Field(default=8005, ge=1, le=65535)
    dispatcher_url: str = Field(
        default="http://127.0.0.1:8003", description="the dispatcher's ops API (server side)"
    )
    ingest_url: str = Field(
        default="http://127.0.0.1:8001", description="ingest, for the call-taker form"
    )
    desk_token: SecretStr = Field(
        default=SecretStr("dev-desk-token"),
        description="bearer token of ingest's /desk/call-summaries (one of INGEST_DESK_TOKENS)",
    )
    session_secret: SecretStr = Field(
        default=SecretStr("dev-console-session-secret"),
        description=(
            "encrypts and authenticates the session cookie (AES-256-GCM, key derived with "
            "HKDF) and signs the sign-in form's CSRF token; the same on every replica"
        ),
    )
    session_secret_previous: SecretStr | None = Field(
        default=None,
        description=(
            "the secret before a rotation: still opens cookies (and sign-in forms) it sealed, "
            "never seals; remove it once CONSOLE_SESSION_MAX_HOURS have passed"
        ),
    )
    session_idle_minutes: int = Field(default=12 * 60, gt=0, description="sign out when idle")
    session_max_hours: int = Field(default=24, gt=0, description="sign out after a day anyway")
    session_refresh_s: int = Field(
        default=60,
        ge=0,
        le=3600,
        description=(
            "the session cookie is re-issued (last seen moved) at most this often, not on "
            "every request; idle expiry is exact to within it"
        ),
    )
    max_signed_out: int = Field(
        default=10_000,
        gt=0,
        description="signed-out session ids each replica refuses until they expire; oldest "
        "forgotten beyond",
    )
    cookie_secure: bool | None = Field(
        default=None, description="Secure cookies; default: on when HOTLINE_ENV=production"
    )
    consumer_group_prefix: str = Field(
        default="console", description="each replica consumes with its own group <prefix>-<id>"
    )
    live_coalesce_ms: int = Field(
        default=150, ge=0, le=5000, description="changes within this window make one SSE push"
    )
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    live_session_check_s: float = Field(
        default=30.0,
        gt=0,
        description="an open live stream asks the dispatcher this often whether its session "
        "still holds (signed out on another replica, token revoked): the longest a signed-out "
        "session goes on receiving change signals",
    )
    delivery_recheck_ms: int = Field(
        default=1000,
        ge=0,
        le=10_000,
        description=(
            "an open case page refreshes again this long after a delivery outcome (the "
            "dispatcher puts it on the timeline while the console reads it); 0: only once"
        ),
    )
    queue_page_size: int = Field(
        default=100, ge=1, le=200, description="cases per queue page (200: the ops API's limit)"
    )
    http_timeout_s: float = Field(default=5.0, gt=0, description="calls to dispatcher/ingest")
    sign_in_per_minute: int = Field(default=10, gt=0, description="sign-in attempts per address")

    @field_validator("session_secret_previous", mode="before")
    @classmethod
    def _no_previous_secret(cls, value: object) -> object:
        # An empty variable (a Secret key left blank after a rotation) means none, not a
        # placeholder to refuse.
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value

    @model_validator(mode="after")
    def _refresh_within_idle(self) -> ConsoleSettings:
        if self.session_refresh_s >= self.session_idle_minutes * 60:
            raise ValueError("session_refresh_s must be shorter than session_idle_minutes")
        return self

    @field_validator("dispatcher_url", "ingest_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "production"
