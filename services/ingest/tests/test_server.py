"""The real process over real HTTP: `python -m hotline_ingest.main` under uvicorn, and what it
answers while the broker is stopped and after it is back."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hotline import signatures
from hotline.contracts.events import InboundEvent, decode
from hotline.testing import skip_unless_required
from hotline.testing.kafka import end_offsets, read_topic
from hotline_ingest.samples import Delivery, Samples
from hotline_ingest.settings import IngestSettings

from .conftest import channel_of, server_process, tampered

pytestmark = pytest.mark.integration


async def _send(client: httpx.AsyncClient, delivery: Delivery) -> httpx.Response:
    return await client.request(
        delivery.method, delivery.path, content=delivery.body, headers=delivery.headers
    )


async def test_signed_webhook_over_real_http(
    server_settings: IngestSettings, tmp_path: Path
) -> None:
    with server_process(server_settings, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            delivery = server.samples.twilio_sms(body="qua HTTP thật")
            first = await _send(client, delivery)
            assert first.status_code == 200, server.log()
            assert (await _send(client, delivery)).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            metrics = (await client.get("/metrics")).text
            assert 'hotline_ingest_accepted_total{channel="sms",kind="message"} 1.0' in metrics
            assert 'hotline_ingest_duplicates_total{channel="sms"} 1.0' in metrics
            assert "hotline_ingest_publish_seconds_count 1.0" in metrics
            assert 'route="/webhooks/twilio/sms"' in metrics
        server.process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
        assert server.process.wait(timeout=20) in (0, -15)
        assert "Traceback" not in server.log()
    ends = await end_offsets(
        server_settings.kafka_bootstrap_servers, server_settings.topics.inbound
    )
    assert sum(ends.values()) == 1


@dataclass(frozen=True)
class Signed:
    """A signed endpoint: its sample builder, how a forger alters a delivery, the answers."""

    build: Callable[[Samples], Delivery]
    forge: Callable[[Delivery], Delivery]
    accepted: int = 200
    refused: int = 401
    reason: str = "bad_signature"


SIGNED = {
    # Body-signed schemes: the provider's signature over a body the forger changed.
    "zalo": Signed(Samples.zalo, lambda d: tampered(d, "hỗ trợ".encode(), b"xx")),
    "viber": Signed(Samples.viber, lambda d: tampered(d, "khẩn".encode(), b"xx")),
    "whatsapp": Signed(Samples.whatsapp, lambda d: tampered(d, "trộm".encode(), b"xx")),
    "sms": Signed(
        Samples.twilio_sms, lambda d: tampered(d, b"84912345678", b"84987654321"), refused=403
    ),
    "twilio_voice": Signed(
        Samples.twilio_voice, lambda d: tampered(d, b"no-answer", b"completed"), refused=403
    ),
    "pbx": Signed(Samples.pbx, lambda d: tampered(d, b'"missed"', b'"answered"')),
    # Shared-secret headers: a wrong secret.
    "telegram": Signed(
        Samples.telegram,
        lambda d: d.with_headers(**{signatures.TELEGRAM_HEADER: "not-the-secret"}),
        refused=403,
    ),
    "desk": Signed(
        Samples.desk,
        lambda d: d.with_headers(Authorization="Bearer not-a-token"),
        accepted=202,
        reason="unauthorized",
    ),
}


@pytest.mark.parametrize("name", list(SIGNED))
async def test_each_signed_channel_over_real_http_publishes_once_and_refuses_forgeries(
    server_settings: IngestSettings, tmp_path: Path, name: str
) -> None:
    """Through uvicorn and the real broker, per channel: a signed delivery is one event, the
    provider's retry of it is answered 2xx without a second, and a forged one is refused with
    nothing published (it is a fresh delivery, so it would be a new event if it got through)."""
    signed = SIGNED[name]
    bootstrap, inbound = server_settings.kafka_bootstrap_servers, server_settings.topics.inbound

    async def published() -> int:
        return sum((await end_offsets(bootstrap, inbound)).values())

    with server_process(server_settings, tmp_path) as server:
        delivery = signed.build(server.samples)
        forged = signed.forge(signed.build(server.samples))
        channel = channel_of(delivery)
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            first = await _send(client, delivery)
            assert first.status_code == signed.accepted, (first.text, server.log())
            assert await published() == 1
            again = await _send(client, delivery)
            assert again.status_code == signed.accepted, again.text
            assert await published() == 1
            denied = await _send(client, forged)
            assert denied.status_code == signed.refused, denied.text
            assert await published() == 1
            metrics = (await client.get("/metrics")).text
        assert "Traceback" not in server.log()
    assert f'hotline_ingest_duplicates_total{{channel="{channel}"}} 1.0' in metrics
    rejected = f'hotline_ingest_rejected_total{{channel="{channel}",reason="{signed.reason}"}}'
    assert f"{rejected} 1.0" in metrics

    # After the process has stopped: still exactly the one event, on the channel it came in by.
    records = await read_topic(bootstrap, inbound, expect=1, idle_s=1.0, timeout_s=10)
    assert len(records) == 1
    event = decode(InboundEvent, records[0].value or b"")
    assert event.channel == channel
    assert records[0].key == event.key.encode()


@pytest.mark.parametrize(
    ("trusted_proxies", "expected"),
    [
        # The peer (this test, 127.0.0.1) is a trusted proxy; host bits in a range are allowed.
        ("10.0.0.0/8, 127.0.0.1/8", [202, 429, 202]),
        # The peer is not in the list: the header is ignored, both share the peer's bucket.
        ("10.0.0.0/8,fd00::/8", [202, 429, 429]),
    ],
    ids=["trusted-proxy", "untrusted-peer"],
)
async def test_the_web_form_limits_the_forwarded_client_only_behind_a_trusted_proxy(
    server_settings: IngestSettings,
    tmp_path: Path,
    trusted_proxies: str,
    expected: list[int],
) -> None:
    """INGEST_TRUSTED_PROXIES reaches uvicorn through the real entry point: behind a trusted
    proxy (the ingress controller) every citizen has a bucket of their own; from any other peer
    X-Forwarded-For is not believed, so a client cannot pick a fresh address per report."""
    settings = server_settings.model_copy(
        update={"trusted_proxies": trusted_proxies, "web_burst": 1, "web_per_minute": 1}
    )
    with server_process(settings, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            answers = []
            for forwarded_for in ("203.0.113.7", "203.0.113.7", "198.51.100.23"):
                report = server.samples.web()
                response = await client.post(
                    report.path,
                    content=report.body,
                    headers={**report.headers, "X-Forwarded-For": forwarded_for},
                )
                answers.append(response.status_code)
    assert answers == expected, server.log()


def _every_channel(samples: Samples) -> dict[str, Delivery]:
    return {
        "zalo": samples.zalo(),
        "viber": samples.viber(),
        "whatsapp": samples.whatsapp(),
        "telegram": samples.telegram(),
        "sms": samples.twilio_sms(),
        "twilio_voice": samples.twilio_voice(),
        "pbx": samples.pbx(),
        "web": samples.web(),
        "desk": samples.desk(),
    }


def _stack(stack_script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(stack_script), *args], capture_output=True, text=True, timeout=240
    )


@pytest.mark.slow
async def test_broker_stopped_503_then_each_delivery_accepted_once(
    server_settings: IngestSettings, tmp_path: Path, stack_script: Path
) -> None:
    status = _stack(stack_script, "status")
    if "kafka       running" not in status.stdout:
        skip_unless_required("Kafka is not managed by deploy/local/stack.py here: cannot stop it")

    with server_process(server_settings, tmp_path) as server:
        deliveries = _every_channel(server.samples)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            try:
                stopped = _stack(stack_script, "stop", "kafka")
                assert stopped.returncode == 0, stopped.stderr
                during = await asyncio.gather(*(_send(client, d) for d in deliveries.values()))
                for name, response in zip(deliveries, during, strict=True):
                    assert response.status_code == 503, (name, response.text)
                    assert response.headers["retry-after"] == str(server_settings.retry_after_s)
                metrics = (await client.get("/metrics")).text
                assert 'hotline_ingest_unavailable_total{channel="zalo"} 1.0' in metrics
                assert (await client.get("/readyz")).status_code == 503
            finally:
                started = _stack(stack_script, "start", "kafka")
                assert started.returncode == 0, started.stderr

            # The providers retry: accepted once the producer has reconnected.
            accepted: dict[str, httpx.Response] = {}
            for _ in range(30):
                pending = [n for n in deliveries if n not in accepted]
                if not pending:
                    break
                answers = await asyncio.gather(*(_send(client, deliveries[n]) for n in pending))
                for name, response in zip(pending, answers, strict=True):
                    if response.status_code < 300:
                        accepted[name] = response
                    else:
                        assert response.status_code == 503, (name, response.text)
                await asyncio.sleep(1)
            assert sorted(accepted) == sorted(deliveries), server.log()

    records = await read_topic(
        server_settings.kafka_bootstrap_servers,
        server_settings.topics.inbound,
        until=lambda rs: len({decode(InboundEvent, r.value or b"").provider for r in rs}) >= 8,
        idle_s=1.0,
        timeout_s=30,
    )
    events = [decode(InboundEvent, r.value or b"") for r in records]
    by_delivery: dict[tuple[str, str], set[str]] = {}
    for event in events:
        by_delivery.setdefault((event.channel, event.provider_message_id), set()).add(
            event.event_id
        )
    # One delivery per channel, each under exactly one event id. The record of a request answered
    # 503 may still have been written once the broker came back (the producer retries what it
    # already queued); it then carries the same event id as the accepted retry, so consumers,
    # which deduplicate by event id, see each delivery once.
    assert len(by_delivery) == len(deliveries)
    assert all(len(ids) == 1 for ids in by_delivery.values()), by_delivery
    web_id = accepted["web"].json()["event_id"]
    assert any(web_id in ids for ids in by_delivery.values())
