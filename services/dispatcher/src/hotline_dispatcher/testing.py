"""Factories for tests and benchmarks: triaged events and settings for an isolated run."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hotline.clock import LOCAL_TZ
from hotline.contracts.events import Sender, Triage, TriagedEvent
from hotline.contracts.labels import Category, Channel, District, InboundKind, Language, Priority
from hotline.ids import new_event_id
from hotline_dispatcher.settings import DispatcherSettings


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment given in Huế local time (aware)."""
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ)


MISSED_CALL: dict[str, Any] = {
    "category": "other",
    "priority": "P2",
    "location": None,
    "kind": "call_missed",
    "channel": "voice",
    "phone": "+84912345678",
    "user_id": None,
}
"""`triaged("", **MISSED_CALL)`: a missed call from a number, as the classifier passes it on."""


def triaged(
    text: str = "Có người đánh nhau bằng dao ở chợ Đông Ba, cứu với",
    *,
    category: Category | str = Category.VIOLENCE,
    priority: Priority | str = Priority.P1,
    location: District | str | None = District.HUE_CITY,
    locality: str | None = None,
    at: datetime | None = None,
    channel: Channel | str = Channel.ZALO,
    kind: InboundKind | str = InboundKind.MESSAGE,
    phone: str | None = None,
    user_id: str | None = "8800112233445566",
    event_id: str | None = None,
    actionable: bool | None = None,
    **extra: Any,
) -> TriagedEvent:
    """A triaged event as the classifier would publish it."""
    at = at or local(2024, 1, 24, 8, 42)
    category = Category(category)
    return TriagedEvent(
        event_id=event_id or new_event_id(),
        channel=Channel(channel),
        kind=InboundKind(kind),
        provider="test",
        provider_message_id=new_event_id(),
        sender=Sender(phone=phone, user_id=user_id),
        text=text,
        occurred_at=at,
        received_at=at,
        triage=Triage(
            category=category,
            actionable=(category != Category.GREETING) if actionable is None else actionable,
            priority=Priority(priority),
            location=District(location) if location else None,
            locality=locality,
            language=Language.VI,
            confidence=0.9,
            model_version="test",
            triaged_at=at + timedelta(milliseconds=20),
        ),
        **extra,
    )


def settings_for(
    *, kafka: str, mongo_uri: str, database: str, namespace: str, **overrides: Any
) -> DispatcherSettings:
    """Settings for one isolated run (own topics, database and consumer group)."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "mongodb_uri": mongo_uri,
        "mongodb_database": database,
        "topic_namespace": namespace,
        "consumer_group": f"dispatcher-{namespace}",
        "environment": "test",
        "maintenance_interval_s": 3600,
        "index_refresh_s": 3600,
    }
    values.update(overrides)
    return DispatcherSettings.model_validate(values)
