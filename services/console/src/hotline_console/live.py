"""The live view: case events, dispatch decisions and delivery outcomes from Kafka, pushed to
browsers over SSE.

Each console replica reads `hotline.dispatched.v1` (every message as decided, greetings
included), `hotline.case-events.v1` and `hotline.deliveries.v1` (each alert's and citizen
reply's outcome) with a consumer group of its own, from the latest offset and without
committing: it only needs what happens while it runs, every replica must see everything, and a
page load fetches the present state from the ops API anyway.

Delivery outcomes concern only the case page of their case (the queue, board and figures show
none of them), so they reach only the streams of that case's pages: a burst of alerts does not
refresh every queue. The dispatcher puts an outcome on the case's timeline when it reads it —
at the same time as the console — so a page re-fetched at once may be a moment early; the case
page is pushed again `CONSOLE_DELIVERY_RECHECK_MS` later to pick the entry up.

What reaches the browser is a signal, not the data: "something changed" (with the case id,
priority and kind of change). The page then re-fetches its fragment through the console, which
asks the ops API with the person's own token — so masking and permissions stay the
dispatcher's, and no phone number travels on the stream. Signals within
`CONSOLE_LIVE_COALESCE_MS` are sent as one push, so a flood of messages costs each browser a
few refreshes a second, not one per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from hotline.kafka import make_consumer
from hotline.logging import get_logger
from hotline_console import metrics

log = get_logger(__name__)

QUEUE_SIZE = 256

DISPATCHED = "dispatched"
CASE_EVENTS = "case-events"
DELIVERIES = "deliveries"
CASE_PAGE_ONLY = frozenset({DELIVERIES})
"""Sources whose signals concern only the page of their case."""


@dataclass(frozen=True)
class Signal:
    """One change: a message decided (`source=dispatched`), a case event (`case-events`) or a
    delivery outcome (`deliveries`, type `delivery`, always with its case)."""

    source: str
    type: str
    case_id: str | None = None
    priority: str | None = None


def signal_from(topic_kind: str, value: bytes | None) -> Signal | None:
    """The signal for a record, or None for a record that is not JSON of the expected shape
    (and for a delivery outcome without a case: no page shows it)."""
    if not value:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    case_id = data.get("case_id")
    priority = data.get("priority")
    if topic_kind == DELIVERIES:
        # Named after the timeline entry it becomes; no case, no page to refresh.
        outcome = isinstance(data.get("status"), str) and isinstance(case_id, str)
        kind = "delivery" if outcome else None
    else:
        kind = data.get("action") if topic_kind == DISPATCHED else data.get("type")
    if not isinstance(kind, str):
        return None
    return Signal(
        source=topic_kind,
        type=kind,
        case_id=case_id if isinstance(case_id, str) else None,
        priority=priority if isinstance(priority, str) else None,
    )


class Broadcaster:
    """Fan-out of signals to the connected browsers (one bounded queue each): a case page's
    stream gets its case's signals, every other stream all but `CASE_PAGE_ONLY` ones."""

    def __init__(self) -> None:
        self._subscribers: dict[asyncio.Queue[Signal], str | None] = {}
        self.closing = asyncio.Event()

    def publish(self, signal: Signal) -> None:
        case_page_only = signal.source in CASE_PAGE_ONLY
        for queue, case_id in list(self._subscribers.items()):
            if case_id is not None and case_id != signal.case_id:
                continue
            if case_id is None and case_page_only:
                continue
            with contextlib.suppress(asyncio.QueueFull):
                # A browser this far behind refreshes on the next signal anyway.
                queue.put_nowait(signal)

    @contextlib.contextmanager
    def subscribe(self, case_id: str | None = None) -> Any:
        """A queue of signals: those of one case (a case page) or of everything else."""
        queue: asyncio.Queue[Signal] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._subscribers[queue] = case_id
        metrics.SSE_CLIENTS.set(len(self._subscribers))
        try:
            yield queue
        finally:
            self._subscribers.pop(queue, None)
            metrics.SSE_CLIENTS.set(len(self._subscribers))

    @property
    def clients(self) -> int:
        return len(self._subscribers)


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {orjson.dumps(data).decode()}\n\n".encode()


SessionCheck = Callable[[], Awaitable[bool]]
"""True while the stream's session may go on receiving (see `stream`)."""

SIGNED_OUT_EVENT = "signed-out"
"""The last event of a stream whose session ended: the page closes its stream (`sse-close`)."""


async def stream(
    broadcaster: Broadcaster,
    *,
    case_id: str | None,
    coalesce_s: float,
    heartbeat_s: float,
    recheck_s: float = 0.0,
    max_s: float = 300.0,
    session_check: SessionCheck | None = None,
    session_check_s: float = 30.0,
) -> AsyncIterator[bytes]:
    """The SSE body for one browser: `changed` for the queue and board, `case` for one case
    page (only its own case's changes), a comment line as heartbeat.

    A case page gets a delivery outcome's `case` again `recheck_s` later (see the module's
    docstring; 0: not again), once for all the outcomes of that moment.

    Every `session_check_s` the stream asks `session_check` whether its session still holds
    (signed out on any replica, token revoked, past its maximum age); when it does not, the
    stream sends `signed-out` and ends, so a signed-out session stops receiving within that
    time wherever its stream is served.

    A stream ends after `max_s`: the browser reconnects at once, which re-checks its session
    and spreads browsers over replicas."""
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + max_s
    recheck_at: float | None = None
    check_at = loop.time() + session_check_s if session_check is not None else None
    ping_at = loop.time() + heartbeat_s
    with broadcaster.subscribe(case_id) as queue:
        yield b"retry: 2000\n: connected\n\n"
        while not broadcaster.closing.is_set() and loop.time() < ends_at:
            if session_check is not None and check_at is not None and loop.time() >= check_at:
                if not await session_check():
                    yield sse(SIGNED_OUT_EVENT, {})
                    return
                check_at = loop.time() + session_check_s
            due = min(ping_at, ends_at, recheck_at or ends_at, check_at or ends_at)
            try:
                first = await asyncio.wait_for(queue.get(), timeout=max(0.01, due - loop.time()))
            except TimeoutError:
                now = loop.time()
                if recheck_at is not None and now >= recheck_at:
                    recheck_at = None
                    yield sse("case", {"case_id": case_id, "types": ["delivery"], "recheck": True})
                    ping_at = now + heartbeat_s
                elif now >= ping_at:
                    yield b": ping\n\n"
                    ping_at = now + heartbeat_s
                continue
            batch = [first]
            if coalesce_s > 0:
                await asyncio.sleep(coalesce_s)
            while not queue.empty():
                batch.append(queue.get_nowait())
            ping_at = loop.time() + heartbeat_s
            if case_id is not None:
                yield sse("case", {"case_id": case_id, "types": [s.type for s in batch]})
                now = loop.time()
                if recheck_at is not None and recheck_at <= now:
                    recheck_at = None  # this push was the recheck
                if recheck_s > 0 and any(s.source in CASE_PAGE_ONLY for s in batch):
                    recheck_at = now + recheck_s
                continue
            yield sse(
                "changed",
                {
                    "count": len(batch),
                    "p1": any(
                        s.priority == "P1" and s.type in ("new_case", "opened") for s in batch
                    ),
                    "signals": [asdict(s) for s in batch[:20]],
                },
            )


class LiveFeed:
    """The Kafka consumer behind the live view (its own group per replica, latest offsets)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[tuple[str, str]],
        group_prefix: str,
        broadcaster: Broadcaster,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = {name: kind for name, kind in topics}
        self.group_id = f"{group_prefix}-{uuid.uuid4().hex[:12]}"
        self.broadcaster = broadcaster
        self.consumer: AIOKafkaConsumer | None = None
        self.received = 0

    def _make(self) -> AIOKafkaConsumer:
        return make_consumer(
            self.bootstrap_servers,
            self.group_id,
            list(self.topics),
            client_id=f"hotline-console-{self.group_id}",
            auto_offset_reset="latest",
            isolation_level="read_uncommitted",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )

    async def run(self) -> None:
        """Consume until cancelled; a broker outage is waited out (the pages keep working)."""
        backoff = 0.5
        while True:
            try:
                self.consumer = self._make()
                await self.consumer.start()
                backoff = 0.5
                await self._loop(self.consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live feed interrupted, reconnecting", extra={"error": repr(exc)[:200]})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                if self.consumer is not None:
                    with contextlib.suppress(Exception):
                        await self.consumer.stop()
                    self.consumer = None

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches: dict[Any, list[ConsumerRecord[bytes, bytes]]] = await consumer.getmany(
                timeout_ms=500
            )
            for tp, records in batches.items():
                kind = self.topics.get(tp.topic, "other")
                for record in records:
                    self.received += 1
                    metrics.LIVE_EVENTS.labels(kind).inc()
                    signal = signal_from(kind, record.value)
                    if signal is not None:
                        self.broadcaster.publish(signal)

    async def ready(self) -> None:
        """Ready once partitions are assigned (before that, changes would be missed)."""
        if self.consumer is None or not self.consumer.assignment():
            raise RuntimeError("live feed has no partitions assigned yet")
