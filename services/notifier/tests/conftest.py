"""Fixtures for the notifier's tests: the provider sandbox, settings, in-process notifiers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import hotline.contracts.events as events
from hotline.clock import ManualClock
from hotline.contracts import example
from hotline.contracts.events import DispatchDecision
from hotline.contracts.topics import TopicNames
from hotline.kafka import Publisher, make_producer
from hotline.mongo import MotorDatabase
from hotline_notifier.http_client import ProviderHttp
from hotline_notifier.service import Notifier
from hotline_notifier.settings import NotifierSettings
from hotline_sandbox.server import SandboxHandle, start_sandbox

# 09:00 in Hue (UTC+7): outside quiet hours.
MORNING = datetime(2024, 1, 24, 2, 0, tzinfo=UTC)

ALERT_PARAMS = {
    "case_id": "HUE-20240124-0042",
    "priority": "KHẨN CẤP",
    "category": "bạo lực, đánh nhau",
    "location": "thành phố Huế",
    "summary": "Có người\nđánh nhau",
    "ack_url": "http://notifier.test/ack/t",
}
"""An alert's template parameters (provider_templates.CASE_ALERT)."""


def decision(**changes: Any) -> DispatchDecision:
    """The example P1 decision (zalo + sms officer, chain of 4 levels, director informed)."""
    data = example("DispatchDecision")
    data.update(changes)
    return DispatchDecision.model_validate(data)


def sandbox_fields(sb: SandboxHandle) -> dict[str, Any]:
    return {k.removeprefix("NOTIFIER_").lower(): v for k, v in sb.notifier_env().items()}


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxHandle]:
    async with start_sandbox() as sb:
        yield sb


@pytest.fixture
def settings_for(
    sandbox: SandboxHandle, namespace: str, kafka_bootstrap: str
) -> Callable[..., NotifierSettings]:
    def make(**overrides: Any) -> NotifierSettings:
        fields: dict[str, Any] = {
            "topic_namespace": namespace,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "consumer_group": f"g-{namespace}",
            "public_base_url": "http://notifier.test",
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "http_read_timeout_s": 0.5,
            "http_connect_timeout_s": 0.5,
            **sandbox_fields(sandbox),
        }
        fields.update(overrides)
        return NotifierSettings(**fields)

    return make


@pytest.fixture
async def http() -> AsyncIterator[ProviderHttp]:
    client = ProviderHttp(connect_timeout_s=0.5, read_timeout_s=0.5, total_timeout_s=5)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def publisher(kafka_bootstrap: str) -> AsyncIterator[Publisher]:
    producer = make_producer(kafka_bootstrap, "notifier-tests")
    await producer.start()
    yield Publisher(producer, "notifier")
    await producer.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MORNING)


NotifierFactory = Callable[..., Awaitable[Notifier]]


@pytest.fixture
def make_notifier(
    settings_for: Callable[..., NotifierSettings],
    http: ProviderHttp,
    publisher: Publisher,
    mongo_db: MotorDatabase,
    clock: ManualClock,
    topics: TopicNames,
) -> NotifierFactory:
    """A notifier wired to the sandbox, the test's topics and database, and a ManualClock."""

    async def make(**overrides: Any) -> Notifier:
        settings = settings_for(**overrides)
        notifier = Notifier.build(
            settings, http=http, publisher=publisher, db=mongo_db, clock=clock
        )
        await notifier.repo.ensure_indexes()
        return notifier

    return make


@contextlib.asynccontextmanager
async def consuming(notifier: Notifier) -> AsyncIterator[Notifier]:
    """Run the notifier's Kafka consumers (real broker) for the duration of the block."""
    workers = notifier.workers()
    for w in workers:
        await w.start()
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield notifier
    finally:
        for w in workers:
            w.runner.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in workers:
            await w.stop()


def outcomes(outs: list[Any]) -> list[events.DeliveryOutcome]:
    """The DeliveryOutcome records among a handler's outputs."""
    return [
        events.DeliveryOutcome.model_validate_json(o.value)
        for o in outs
        if o.topic.endswith("hotline.deliveries.v1")
    ]


def case_events_of(outs: list[Any]) -> list[events.CaseEvent]:
    return [
        events.CaseEvent.model_validate_json(o.value)
        for o in outs
        if o.topic.endswith("hotline.case-events.v1")
    ]


def ack_client(notifier: Notifier) -> httpx.AsyncClient:
    """An HTTP client for the notifier's own app (ack links), without running its consumers."""
    app = notifier.app(run_consumers=False)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://notifier.test"
    )


def token_from(text: str) -> str:
    marker = "http://notifier.test/ack/"
    start = text.index(marker) + len(marker)
    end = start
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end]
