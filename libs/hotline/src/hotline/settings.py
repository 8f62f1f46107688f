"""Settings base: one typed settings object per service, built at its entry point.

Infrastructure variables are shared by every service and read without a prefix
(`KAFKA_BOOTSTRAP_SERVERS`, `MONGODB_URI`, `MONGODB_DATABASE`, `HOTLINE_ENV`,
`HOTLINE_TOPIC_NAMESPACE`, `LOG_LEVEL`); each service adds its own fields under its own prefix
(`INGEST_`, `CLASSIFIER_`, `DISPATCHER_`, `NOTIFIER_`). A base field without an alias is read
under the service's prefix too: `trusted_proxies` is `INGEST_TRUSTED_PROXIES` in ingest.

Secrets are `SecretStr`. Outside development and test, a secret still set to a placeholder
value (anything starting with `dev-` or `changeme`, a URL whose password does, or empty)
refuses to start the service.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hotline.contracts.topics import TopicNames

Environment = Literal["development", "test", "production"]

PLACEHOLDER_PREFIXES = ("dev-", "changeme", "change-me", "placeholder", "example")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Loopback only: a reverse proxy on the same host (the console's default, and uvicorn's).
DEFAULT_TRUSTED_PROXIES = "127.0.0.1,::1"


def is_placeholder(value: str) -> bool:
    """An empty value, a value starting with a placeholder prefix, or a URL whose password is
    one (`mongodb://hotline:changeme-...@mongodb-0.mongodb:27017/`, the example Secret's)."""
    lowered = value.strip().lower()
    if not lowered or lowered.startswith(PLACEHOLDER_PREFIXES):
        return True
    if "://" in lowered:
        try:
            password = urlsplit(lowered).password
        except ValueError:  # not a URL after all (e.g. a bad port): judged as a plain value
            return False
        return password is not None and is_placeholder(password)
    return False


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """Comma-separated addresses and CIDR ranges; an address is a one-address network.

    Host bits are allowed and dropped (`10.1.2.3/8` is `10.0.0.0/8`). Anything else (a host
    name, `*`) raises ValueError: a proxy list that silently matched nothing would put every
    client behind the proxy into one rate-limit bucket.
    """
    networks: list[IPNetwork] = []
    for raw in value.split(","):
        part = raw.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"{part!r} is not an address or CIDR range") from exc
    return tuple(networks)


class HotlineSettings(BaseSettings):
    """Fields every service shares. Subclass it and set `env_prefix` in `model_config`."""

    model_config = SettingsConfigDict(env_prefix="HOTLINE_", extra="ignore", frozen=True)

    service_name: str = "hotline"
    environment: Environment = Field(
        default="development", validation_alias=AliasChoices("HOTLINE_ENV", "environment")
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    topic_namespace: str = Field(
        default="",
        description="prefix for every topic name (isolates tests and parallel stacks)",
        validation_alias=AliasChoices("HOTLINE_TOPIC_NAMESPACE", "topic_namespace"),
    )
    mongodb_uri: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27017/"),
        validation_alias=AliasChoices("MONGODB_URI", "mongodb_uri"),
    )
    mongodb_database: str = Field(
        default="hotline",
        validation_alias=AliasChoices("MONGODB_DATABASE", "mongodb_database"),
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL", "log_level"))
    log_json: bool = Field(default=True, validation_alias=AliasChoices("LOG_JSON", "log_json"))
    # No alias: read under the service's prefix (INGEST_TRUSTED_PROXIES, ...), because which
    # peers are proxies depends on how each service is exposed.
    trusted_proxies: str = Field(
        default=DEFAULT_TRUSTED_PROXIES,
        description=(
            "comma-separated addresses or CIDR ranges of the reverse proxies (the ingress "
            "controller) whose X-Forwarded-For and X-Forwarded-Proto are believed: from these "
            "peers the client is the rightmost X-Forwarded-For hop that is not one of them; "
            "from any other peer the headers are ignored"
        ),
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        """What the entry point passes to `hotline.service.serve(trusted_proxies=...)`."""
        return parse_networks(self.trusted_proxies)

    @property
    def topics(self) -> TopicNames:
        return TopicNames.for_namespace(self.topic_namespace)

    @property
    def is_development(self) -> bool:
        return self.environment in ("development", "test")

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> HotlineSettings:
        if self.is_development:
            return self
        bad = [
            name
            for name, value in self
            if isinstance(value, SecretStr) and is_placeholder(value.get_secret_value())
        ]
        if bad:
            raise ValueError(
                f"placeholder secret(s) {', '.join(sorted(bad))} are refused when "
                f"HOTLINE_ENV={self.environment}; set real values"
            )
        return self


def redacted(settings: BaseSettings) -> dict[str, Any]:
    """The settings as a dict for a start-up log line, with every secret masked.

    Secrets can also be dictionary keys (API tokens mapped to identities): those become
    `secret-1`, `secret-2`, ... so the line stays valid JSON and reveals nothing.
    """
    return {name: _redact(value) for name, value in settings}


def _redact(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items(), start=1):
            key = f"secret-{i}" if isinstance(k, SecretStr) else str(k)
            out[key] = _redact(v)
        return out
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    if isinstance(value, BaseModel):
        return _redact(dict(value))
    return value
