"""Where the CLI finds the services (env prefix HOTLINE_CLI_); defaults match `make run`."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from hotline.settings import HotlineSettings


class CliSettings(HotlineSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_CLI_", extra="ignore", frozen=True)

    service_name: str = "cli"
    ingest_url: str = "http://127.0.0.1:8001"
    classifier_url: str = "http://127.0.0.1:8002"
    dispatcher_url: str = "http://127.0.0.1:8003"
    notifier_url: str = "http://127.0.0.1:8004"
    console_url: str = "http://127.0.0.1:8005"
    sandbox_url: str = "http://127.0.0.1:8009"
    api_token: SecretStr = SecretStr("dev-staff-token")
    """Ops API bearer token used by `cases`, `case`, `ack` (role staff or above to act)."""

    def service_urls(self) -> dict[str, str]:
        return {
            "ingest": self.ingest_url,
            "classifier": self.classifier_url,
            "dispatcher": self.dispatcher_url,
            "notifier": self.notifier_url,
            "console": self.console_url,
        }
