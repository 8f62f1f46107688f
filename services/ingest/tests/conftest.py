"""Ingest test fixtures: the real app on the real broker and database, one namespace per test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from fastapi import FastAPI
from prometheus_client import REGISTRY

from hotline.clock import Clock
from hotline.contracts.events import InboundEvent, decode
from hotline.contracts.topics import TopicNames
from hotline.mongo import MotorDatabase
from hotline.testing.kafka import end_offsets, read_topic
from hotline_ingest.app import build_app
from hotline_ingest.samples import Delivery, Samples
from hotline_ingest.settings import IngestSettings

BASE_URL = "http://ingest.test"
PUBLIC_BASE_URL = "https://hotline.example.vn"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class Ingest:
    """A running ingest app with a client, its settings and signed-sample builders."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: IngestSettings
    samples: Samples
    bootstrap: str
    db: MotorDatabase

    async def send(self, delivery: Delivery, **kwargs: Any) -> httpx.Response:
        return await self.client.request(
            delivery.method,
            delivery.path,
            content=delivery.body,
            headers=delivery.headers,
            **kwargs,
        )

    async def published_count(self) -> int:
        return sum((await end_offsets(self.bootstrap, self.settings.topics.inbound)).values())

    async def records(self, expect: int) -> list[ConsumerRecord[bytes, bytes]]:
        return await read_topic(
            self.bootstrap, self.settings.topics.inbound, expect=expect, idle_s=0.2, timeout_s=10
        )

    async def events(self, expect: int) -> list[InboundEvent]:
        return [decode(InboundEvent, r.value or b"") for r in await self.records(expect)]


def make_settings(
    namespace: str, db: MotorDatabase, bootstrap: str, uri: str, **overrides: Any
) -> IngestSettings:
    options: dict[str, Any] = {
        "environment": "test",
        "topic_namespace": namespace,
        "kafka_bootstrap_servers": bootstrap,
        "mongodb_uri": uri,
        "mongodb_database": db.name,
        "public_base_url": PUBLIC_BASE_URL,
        "publish_timeout_s": 1.5,
        "dedup_timeout_s": 1.5,
        "retry_after_s": 3,
        **overrides,
    }
    return IngestSettings(**options)


# --------------------------------------------------------------------------- deliveries


def channel_of(delivery: Delivery) -> str:
    """The channel label an endpoint's events and metrics carry."""
    return {
        "/webhooks/zalo": "zalo",
        "/webhooks/viber": "viber",
        "/webhooks/whatsapp": "whatsapp",
        "/webhooks/telegram": "telegram",
        "/webhooks/twilio/sms": "sms",
        "/webhooks/twilio/voice": "voice",
        "/webhooks/pbx": "voice",
        "/webhooks/web": "web",
        "/desk/call-summaries": "desk",
    }[delivery.path]


def tampered(delivery: Delivery, old: bytes, new: bytes) -> Delivery:
    """The same signature over a changed body: what a forger would send."""
    assert old in delivery.body
    return replace(delivery, body=delivery.body.replace(old, new))


def without(delivery: Delivery, header: str) -> Delivery:
    return replace(delivery, headers={k: v for k, v in delivery.headers.items() if k != header})


IngestFactory = Callable[..., AbstractAsyncContextManager[Ingest]]


@pytest.fixture
def ingest_factory(
    namespace: str,
    topics: TopicNames,
    mongo_db: MotorDatabase,
    kafka_bootstrap: str,
    mongo_uri: str,
) -> IngestFactory:
    """Start ingest apps on this test's topics and database (several = several replicas)."""

    @contextlib.asynccontextmanager
    async def start(
        clock: Clock | None = None, client_ip: str = "127.0.0.1", **overrides: Any
    ) -> AsyncIterator[Ingest]:
        settings = make_settings(namespace, mongo_db, kafka_bootstrap, mongo_uri, **overrides)
        app = build_app(settings, clock=clock)
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
        ):
            yield Ingest(app, client, settings, Samples(settings), kafka_bootstrap, mongo_db)

    return start


@pytest.fixture
async def ingest(ingest_factory: IngestFactory) -> AsyncIterator[Ingest]:
    async with ingest_factory() as running:
        yield running


# --------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """`python -m hotline_ingest.main` as a subprocess, configured through its environment."""

    base_url: str
    settings: IngestSettings
    samples: Samples
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def settings_env(settings: IngestSettings) -> dict[str, str]:
    """The environment variables that rebuild `settings` in another process."""
    return {
        "HOTLINE_ENV": settings.environment,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URI": settings.mongodb_uri.get_secret_value(),
        "MONGODB_DATABASE": settings.mongodb_database,
        "HOTLINE_TOPIC_NAMESPACE": settings.topic_namespace,
        "INGEST_HOST": settings.host,
        "INGEST_PORT": str(settings.port),
        "INGEST_PUBLIC_BASE_URL": settings.public_base_url or "",
        "INGEST_PUBLISH_TIMEOUT_S": str(settings.publish_timeout_s),
        "INGEST_DEDUP_TIMEOUT_S": str(settings.dedup_timeout_s),
        "INGEST_RETRY_AFTER_S": str(settings.retry_after_s),
        "INGEST_TRUSTED_PROXIES": settings.trusted_proxies,
        "INGEST_WEB_BURST": str(settings.web_burst),
        "INGEST_WEB_PER_MINUTE": str(settings.web_per_minute),
        "LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def server_process(settings: IngestSettings, log_dir: Path) -> Iterator[Server]:
    """Start ingest as its own process and wait until it answers (blocking: a test helper)."""
    log_path = log_dir / f"ingest-{settings.port}.log"
    env = {**os.environ, **settings_env(settings)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hotline_ingest.main"], env=env, stdout=log, stderr=log
        )
    base_url = f"http://127.0.0.1:{settings.port}"
    server = Server(base_url, settings, Samples(settings, base_url), process, log_path)
    try:
        for _ in range(300):
            if process.poll() is not None:
                pytest.fail(f"ingest exited with {process.returncode}:\n{server.log()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"ingest did not answer /healthz:\n{server.log()}")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def server_settings(
    namespace: str,
    topics: TopicNames,
    mongo_db: MotorDatabase,
    kafka_bootstrap: str,
    mongo_uri: str,
) -> IngestSettings:
    return make_settings(namespace, mongo_db, kafka_bootstrap, mongo_uri, port=free_port())
