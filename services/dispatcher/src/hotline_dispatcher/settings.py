"""Dispatcher settings: the shared infrastructure fields plus `DISPATCHER_*` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from hotline.settings import HotlineSettings, is_placeholder
from hotline_dispatcher.config import default_paths

ApiRole = Literal["viewer", "call_taker", "officer", "staff", "director", "admin"]

_ORG, _ROSTERS, _ROUTING = default_paths()


class ApiIdentity(BaseModel):
    """Who holds an API token: a person id (or a service name), a role, and for officers a unit."""

    id: str
    role: ApiRole
    name: str | None = None
    unit: str | None = None


DEV_TOKENS: dict[SecretStr, ApiIdentity] = {
    SecretStr("dev-viewer-token"): ApiIdentity(id="viewer", role="viewer"),
    SecretStr("dev-call-taker-token"): ApiIdentity(id="pv01-ct1", role="call_taker", unit="pv01"),
    SecretStr("dev-officer-token"): ApiIdentity(id="hue-city-o1", role="officer", unit="ca-tp-hue"),
    SecretStr("dev-staff-token"): ApiIdentity(id="pv01-leader", role="staff", unit="pv01"),
    SecretStr("dev-director-token"): ApiIdentity(id="director", role="director", unit="bgd"),
    SecretStr("dev-admin-token"): ApiIdentity(id="admin", role="admin"),
}


class DispatcherSettings(HotlineSettings):
    """Environment variables `DISPATCHER_*` (and the shared ones, see hotline.settings)."""

    model_config = SettingsConfigDict(env_prefix="DISPATCHER_", extra="ignore", frozen=True)

    service_name: str = "dispatcher"
    host: str = "127.0.0.1"  # Kubernetes sets DISPATCHER_HOST=0.0.0.0
    port: int = 8003
    organisation_file: Path = _ORG
    rosters_file: Path = _ROSTERS
    routing_file: Path = _ROUTING
    api_tokens: dict[SecretStr, ApiIdentity] = Field(
        default_factory=lambda: dict(DEV_TOKENS),
        description='JSON: {"<token>": {"id": "...", "role": "viewer|call_taker|officer|'
        'staff|director|admin", "unit": "..."}}',
    )
    consumer_group: str = "dispatcher"
    maintenance_interval_s: float = Field(default=15.0, gt=0)
    index_refresh_s: float = Field(default=60.0, gt=0)
    claims_retention_days: int = Field(default=15, gt=0)
    claim_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="a triaged event claimed by another consumer and not decided by then is "
        "decided here (before, its redelivery is retried)",
    )
    publish_timeout_s: float = Field(default=5.0, gt=0)
    batch_size: int = Field(default=500, gt=0)
    batch_linger_ms: int = Field(
        default=20,
        ge=0,
        description="a poll with fewer than batch_size triaged events waits this long for more: "
        "one claim insert and one decision pass then serve several events under load",
    )

    @model_validator(mode="after")
    def _refuse_placeholder_tokens(self) -> DispatcherSettings:
        if self.is_development:
            return self
        bad = [i.id for t, i in self.api_tokens.items() if is_placeholder(t.get_secret_value())]
        if bad:
            raise ValueError(
                f"placeholder API token(s) for {', '.join(sorted(bad))} are refused when "
                f"HOTLINE_ENV={self.environment}; set DISPATCHER_API_TOKENS"
            )
        return self
