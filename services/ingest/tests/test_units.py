"""Pure pieces without the stack: the token buckets, the settings' refusals, the proxy trust."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from prometheus_client import REGISTRY
from pydantic import SecretStr, ValidationError

from hotline.contracts import example
from hotline.contracts.events import InboundEvent, decode, encode
from hotline.contracts.labels import Channel
from hotline.service import uvicorn_config
from hotline_ingest.app import build_app
from hotline_ingest.breaker import Breaker
from hotline_ingest.intake import flag_flood_limited
from hotline_ingest.metrics import KINDS_BY_CHANNEL, Rejection
from hotline_ingest.ratelimit import TokenBucketLimiter
from hotline_ingest.settings import IngestSettings


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_refill_per_key() -> None:
    clock = FakeTime()
    limiter = TokenBucketLimiter(burst=3, per_minute=6, monotonic=clock)
    assert [limiter.try_acquire("spammer") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.try_acquire("spammer")
    assert wait == pytest.approx(10.0)  # 6 per minute: one token every 10 s
    assert limiter.retry_after(wait) == "10"
    assert limiter.try_acquire("citizen") == 0.0  # others are not slowed down
    clock.now += 10
    assert limiter.try_acquire("spammer") == 0.0
    assert limiter.try_acquire("spammer") > 0
    clock.now += 3600  # refills up to the burst, not beyond
    assert [limiter.try_acquire("spammer") == 0.0 for _ in range(4)] == [True, True, True, False]


def test_token_bucket_memory_is_bounded() -> None:
    clock = FakeTime()
    limiter = TokenBucketLimiter(burst=1, per_minute=1, max_keys=100, monotonic=clock)
    for i in range(1000):
        limiter.try_acquire(f"sender-{i}")
    assert len(limiter) == 100
    # The most recent senders are still limited; the forgotten ones start full again.
    assert limiter.try_acquire("sender-999") > 0
    assert limiter.try_acquire("sender-0") == 0.0
    with pytest.raises(ValueError, match="burst"):
        TokenBucketLimiter(burst=0, per_minute=1)


def test_defaults_match_the_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INGEST_PORT", "INGEST_HOST", "INGEST_BODY_LIMIT_BYTES", "HOTLINE_ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = IngestSettings()
    assert (settings.port, settings.host, settings.body_limit_bytes) == (8001, "127.0.0.1", 262144)
    monkeypatch.setenv("INGEST_PORT", "9101")
    monkeypatch.setenv("INGEST_DESK_TOKENS", '{"ct-hue-01": "tok-1", "ct-hue-02": "tok-2"}')
    monkeypatch.setenv("INGEST_PUBLIC_BASE_URL", "https://hotline.example.vn/")
    settings = IngestSettings()
    assert settings.port == 9101
    assert settings.desk_tokens["ct-hue-02"].get_secret_value() == "tok-2"
    assert settings.public_base_url == "https://hotline.example.vn"
    assert "tok-1" not in repr(settings)


def test_placeholder_secrets_and_desk_tokens_are_refused_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOTLINE_ENV", "production")
    monkeypatch.setenv("MONGODB_URI", "mongodb://db:27017/")
    with pytest.raises(ValidationError, match="viber_auth_token"):
        IngestSettings()
    real = {
        name: SecretStr(f"real-{name}")
        for name in (
            "zalo_oa_secret_key",
            "viber_auth_token",
            "whatsapp_app_secret",
            "whatsapp_verify_token",
            "telegram_secret_token",
            "twilio_auth_token",
            "pbx_secret",
        )
    }
    with pytest.raises(ValidationError, match="desk token"):
        IngestSettings(**real)  # type: ignore[arg-type]
    ok = IngestSettings(**real, desk_tokens={"ct-01": SecretStr("vault-token")})  # type: ignore[arg-type]
    assert ok.environment == "production"


def test_settings_shapes_are_checked() -> None:
    with pytest.raises(ValidationError, match="telegram_secret_token"):
        IngestSettings(telegram_secret_token=SecretStr("has spaces"))
    with pytest.raises(ValidationError, match="public_base_url"):
        IngestSettings(public_base_url="hotline.example.vn")


def test_trusted_proxies_are_addresses_or_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INGEST_TRUSTED_PROXIES", raising=False)
    loopback = ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("::1")
    assert IngestSettings().trusted_proxy_networks == loopback
    monkeypatch.setenv("INGEST_TRUSTED_PROXIES", " 10.1.2.3/8, ,fd00::/8,192.168.4.7")
    assert IngestSettings().trusted_proxy_networks == (
        ipaddress.ip_network("10.0.0.0/8"),  # host bits dropped, not a name uvicorn never matches
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("192.168.4.7/32"),
    )
    assert IngestSettings(trusted_proxies="").trusted_proxy_networks == ()  # trust no peer
    for wrong in ("ingress-nginx", "*", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="trusted_proxies"):
            IngestSettings(trusted_proxies=wrong)


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("10.42.0.17", "203.0.113.7", "203.0.113.7"),  # the ingress pod names the citizen
        # What the client wrote left of its proxy's entry is not believed.
        ("10.42.0.17", "198.51.100.99, 203.0.113.7", "203.0.113.7"),
        ("10.42.0.17", "203.0.113.7, 10.42.3.9", "203.0.113.7"),  # two trusted hops
        ("198.51.100.1", "203.0.113.7", "198.51.100.1"),  # not a proxy: header ignored
    ],
)
async def test_the_client_address_comes_from_a_trusted_proxy_only(
    peer: str, forwarded_for: str, client: str
) -> None:
    """What the served app sees as the client (the web form's rate-limit key) under the uvicorn
    configuration `main` builds from INGEST_TRUSTED_PROXIES."""
    app = FastAPI()

    @app.get("/client")
    async def client_host(request: Request) -> str:
        return request.client.host if request.client else ""

    settings = IngestSettings(trusted_proxies="10.42.1.1/16")
    config = uvicorn_config(app, "127.0.0.1", 8001, "warning", settings.trusted_proxy_networks)
    config.load()
    transport = httpx.ASGITransport(app=config.loaded_app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as http:
        answer = await http.get("/client", headers={"X-Forwarded-For": forwarded_for})
    assert answer.json() == client


def test_the_process_refuses_to_start_with_placeholders_in_production() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "HOTLINE_"))}
    env.update({"HOTLINE_ENV": "production", "MONGODB_URI": "mongodb://db:27017/"})
    result = subprocess.run(
        [sys.executable, "-m", "hotline_ingest.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "placeholder secret" in result.stderr


def test_breaker_fails_fast_then_lets_one_probe_through() -> None:
    clock = FakeTime()
    breaker = Breaker(open_s=1.0, monotonic=clock)
    assert breaker.enter() is False  # closed: everyone goes
    breaker.failed()
    assert breaker.enter() is None  # open: answer 503 at once
    clock.now += 1.0
    assert breaker.enter() is True  # the probe
    assert breaker.enter() is None  # only one probe at a time
    breaker.leave(True)  # the probe never reached the dependency (a duplicate)
    probe = breaker.enter()
    assert probe is True
    breaker.failed()  # the probe failed: open again
    breaker.leave(probe)
    assert breaker.enter() is None
    clock.now += 1.0
    probe = breaker.enter()
    breaker.succeeded()
    breaker.leave(probe)
    assert breaker.enter() is False and not breaker.is_open


def test_every_channel_series_exists_at_zero_once_the_app_is_built() -> None:
    """Rate/ratio alerts (the ingest rejection ratio) need a 0 series, not none."""
    build_app(IngestSettings(environment="test"))

    def exists(name: str, **labels: str) -> bool:
        return REGISTRY.get_sample_value(name, labels) is not None

    missing = [
        (channel.value, reason.value)
        for channel in Channel
        for reason in Rejection
        if not exists("hotline_ingest_rejected_total", channel=channel.value, reason=reason.value)
    ]
    missing += [
        (channel.value, kind.value)
        for channel, kinds in KINDS_BY_CHANNEL.items()
        for kind in kinds
        if not exists("hotline_ingest_accepted_total", channel=channel.value, kind=kind.value)
    ]
    missing += [
        (name, channel.value)
        for channel in Channel
        for name in ("hotline_ingest_duplicates_total", "hotline_ingest_unavailable_total")
        if not exists(name, channel=channel.value)
    ]
    assert missing == []
    assert set(KINDS_BY_CHANNEL) == set(Channel)
    assert exists("hotline_ingest_flood_limited_total", channel="zalo")


def test_a_flood_limited_event_is_the_same_event_plus_the_flag() -> None:
    event = InboundEvent.model_validate(example("InboundEvent"))
    assert event.flood_limited is False
    flagged = flag_flood_limited(event)
    assert flagged.key == event.key and flagged.event_id == event.event_id
    raw = encode(flagged)
    assert orjson.loads(raw) == {**orjson.loads(encode(event)), "flood_limited": True}
    assert decode(InboundEvent, raw).flood_limited is True
