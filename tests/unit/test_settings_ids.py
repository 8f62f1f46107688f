"""Settings refuse placeholder secrets outside development; ids are time-ordered."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from hotline.ids import new_event_id, stable_id, uuid7, uuid7_time_ms
from hotline.settings import HotlineSettings, is_placeholder, redacted


class DemoSettings(HotlineSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", frozen=True)
    api_secret: SecretStr = SecretStr("dev-secret")
    port: int = 8000


def test_placeholder_secrets_are_fine_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_ENV", "development")
    settings = DemoSettings()
    assert settings.api_secret.get_secret_value() == "dev-secret"
    assert "dev-secret" not in repr(settings)


def test_placeholder_secrets_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_ENV", "production")
    with pytest.raises(ValidationError, match="api_secret"):
        DemoSettings()
    monkeypatch.setenv("DEMO_API_SECRET", "s3cr3t-from-vault")
    monkeypatch.setenv("MONGODB_URI", "mongodb://db:27017/")
    assert DemoSettings().api_secret.get_secret_value() == "s3cr3t-from-vault"


def test_shared_infrastructure_variables_have_no_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("HOTLINE_TOPIC_NAMESPACE", "staging")
    monkeypatch.setenv("DEMO_PORT", "9001")
    settings = DemoSettings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.topics.inbound == "staging.hotline.inbound.v1"
    assert settings.port == 9001


@pytest.mark.parametrize(
    "value",
    [
        "",
        "dev-x",
        "changeme",
        "CHANGE-ME-please",
        "mongodb://hotline:changeme-mongodb-password@mongodb-0.mongodb:27017/hotline?replicaSet=rs0",
        "mongodb://u:dev-pw@db:27017/",
    ],
)
def test_placeholder_detection(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize(
    "value",
    ["s3cr3t-from-vault", "mongodb://db:27017/", "mongodb://u:Xq9-real@db:27017/", "a://b:c:d@"],
)
def test_real_values_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def test_the_example_database_password_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOTLINE_ENV", "production")
    monkeypatch.setenv("DEMO_API_SECRET", "s3cr3t-from-vault")
    monkeypatch.setenv("MONGODB_URI", "mongodb://hotline:changeme-pw@mongodb-0.mongodb:27017/")
    with pytest.raises(ValidationError, match="mongodb_uri"):
        DemoSettings()


def test_uuid7_is_version_7_and_strictly_increasing() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(u.version == 7 for u in ids)
    assert ids == sorted(ids, key=lambda u: u.int)
    assert len(set(ids)) == len(ids)


def test_uuid7_embeds_its_time() -> None:
    u = uuid7(now_ms=1_706_060_523_123)
    assert uuid7_time_ms(u) == 1_706_060_523_123
    assert uuid.UUID(new_event_id()).version == 7


def test_stable_id_is_deterministic_and_separates_parts() -> None:
    assert stable_id("a", "b") == stable_id("a", "b")
    assert stable_id("ab", "c") != stable_id("a", "bc")


def test_redacted_masks_secret_values_and_secret_keys() -> None:
    class TokenSettings(HotlineSettings):
        tokens: dict[SecretStr, dict[str, str]] = Field(
            default_factory=lambda: {SecretStr("dev-tok"): {"role": "staff"}}
        )

    line = redacted(TokenSettings())
    rendered = json.dumps(line)  # must be serialisable for the start-up log line
    assert "dev-tok" not in rendered
    assert line["tokens"] == {"secret-1": {"role": "staff"}}
    assert line["mongodb_uri"] == "**********"
