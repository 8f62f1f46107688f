"""What the sandbox saw: every accepted message, every request attempt, and a live feed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class Recorded:
    """One message a provider accepted (what a real provider would have delivered)."""

    id: int
    provider: str
    channel: str
    to: str
    text: str
    provider_message_id: str
    at: str
    kind: str = "text"
    subject: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Attempt:
    """One request to a provider endpoint, accepted or not (tests count retries with these)."""

    id: int
    provider: str
    status: int
    outcome: str
    at: str
    fault: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class MessageStore:
    """In-memory record of accepted messages and attempts, with waiters for the live view."""

    def __init__(self, max_records: int = 100_000) -> None:
        self._messages: deque[Recorded] = deque(maxlen=max_records)
        self._attempts: deque[Attempt] = deque(maxlen=max_records)
        self._ids = itertools.count(1)
        self._attempt_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._version = 0

    def _now(self) -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds")

    def record(
        self,
        *,
        provider: str,
        channel: str,
        to: str,
        text: str,
        provider_message_id: str,
        kind: str = "text",
        subject: str | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Recorded:
        item = Recorded(
            id=next(self._ids),
            provider=provider,
            channel=channel,
            to=to,
            text=text,
            provider_message_id=provider_message_id,
            at=self._now(),
            kind=kind,
            subject=subject,
            body=body or {},
            headers=headers or {},
        )
        self._messages.append(item)
        self.attempt(provider, 200, "accepted")
        return item

    def attempt(
        self,
        provider: str,
        status: int,
        outcome: str,
        fault: str | None = None,
        detail: str | None = None,
    ) -> None:
        self._attempts.append(
            Attempt(next(self._attempt_ids), provider, status, outcome, self._now(), fault, detail)
        )
        self._notify()

    def _notify(self) -> None:
        self._version += 1

        async def wake() -> None:
            async with self._changed:
                self._changed.notify_all()

        # Without a running loop (a synchronous helper) nobody can be waiting.
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(wake())

    def messages(
        self,
        provider: str | None = None,
        channel: str | None = None,
        to: str | None = None,
        contains: str | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> list[Recorded]:
        """Accepted messages matching every given filter, oldest first."""
        out = [
            m
            for m in list(self._messages)
            if m.id > since_id
            and (provider is None or m.provider == provider)
            and (channel is None or m.channel == channel)
            and (to is None or m.to == to)
            and (contains is None or contains in m.text or contains in (m.subject or ""))
        ]
        return out[:limit] if limit else out

    def stats(self) -> dict[str, Any]:
        by_provider: dict[str, int] = {}
        for m in list(self._messages):
            by_provider[m.provider] = by_provider.get(m.provider, 0) + 1
        return {
            "messages": len(self._messages),
            "attempts": len(self._attempts),
            "by_provider": by_provider,
        }

    def attempts(self, provider: str | None = None) -> list[Attempt]:
        return [a for a in list(self._attempts) if provider is None or a.provider == provider]

    def clear(self) -> None:
        self._messages.clear()
        self._attempts.clear()
        self._notify()

    async def wait_for(
        self, count: int = 1, timeout_s: float = 10.0, **filters: Any
    ) -> list[Recorded]:
        """Wait until at least `count` messages match the filters (or the timeout passes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = self.messages(**filters)
            remaining = deadline - loop.time()
            if len(found) >= count or remaining <= 0:
                return found
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
