"""The faust-streaming app: an agent from `hotline.inbound.v1` to `hotline.triaged.v1`.

Faust owns consumption (group membership, partition assignment, offsets). Publishing goes
through the project's own producer (`hotline.kafka`: acks=all, lz4) and every
batch's outputs and dead letters are acknowledged by the broker *before* the agent asks for the
next batch, which is when faust marks the batch's events as processed and may commit them. A
crash in between re-delivers the batch; the output carries the same event id, and the
dispatcher deduplicates by it.

Poison (bytes that are not an InboundEvent) goes to the dead-letter topic with the reason and
the agent keeps going; it never blocks the partition.

Faust's loop is not the shared runner's, so the agent exports the runner's consumer metrics
itself, under the same names and labels (the lag alert and the dashboards read them): batch
time, publish retries, and the lag per partition (highwater minus the next offset to process),
after each batch and every 5 seconds, so a backlog that grows while one batch takes long (or
waits for the broker) shows before the batch ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from faust.exceptions import ConsumerNotStarted
from faust.web import Request, Response, View
from pydantic import ValidationError

from hotline.clock import Clock
from hotline.contracts import DeadLetterReason, InboundEvent
from hotline.kafka import (
    Outgoing,
    Publisher,
    ensure_topics,
    kafka_ready,
    make_producer,
    topic_label,
)
from hotline.logging import get_logger
from hotline.metrics import (
    CONSUMED,
    CONSUMER_LAG,
    DEADLETTERS,
    DEPENDENCY_UP,
    HANDLER_RETRIES,
    PROCESSING_SECONDS,
    render_latest,
)
from hotline.runner import make_dead_letter, precreate_deadletter_series
from hotline_classifier.engine import TriageEngine
from hotline_classifier.pipeline import triage_events
from hotline_classifier.settings import ClassifierSettings

log = get_logger(__name__)

SERVICE = "classifier"
DEADLETTER_REASONS = (
    DeadLetterReason.UNDECODABLE,
    DeadLetterReason.INVALID,
    DeadLetterReason.HANDLER_ERROR,
)
"""The reasons `_dead_letter` gives (pre-created at 0 so the dead-letter alert sees the first)."""


class Classifier:
    """The classifier process: faust app, producer, engine, clock."""

    def __init__(self, settings: ClassifierSettings, engine: TriageEngine, clock: Clock) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.publisher: Publisher | None = None
        self._producer_lock = asyncio.Lock()
        self.processed = 0
        self.deadlettered = 0
        self.retries = 0
        # The `topic` label: the registry name without a test namespace, as the runner's.
        self.topic = topic_label(settings.topics.inbound)
        # Per partition (faust's TP) this replica processed: the offset after its last batch.
        self._next_offsets: dict[Any, int] = {}
        precreate_deadletter_series(SERVICE, self.topic, DEADLETTER_REASONS)
        HANDLER_RETRIES.labels(SERVICE, self.topic)  # at 0: rate() then sees the first retry
        self.app = self._build_app()

    # ------------------------------------------------------------------ faust wiring

    def _build_app(self) -> faust.App:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
        app = faust.App(
            s.app_id,
            broker=[f"kafka://{b}" for b in s.kafka_bootstrap_servers.split(",")],
            value_serializer="raw",
            key_serializer="raw",
            web_enabled=True,
            web_bind=s.host,
            web_port=s.port,
            web_host=s.host,
            consumer_auto_offset_reset="earliest",
            topic_allow_declare=False,
            topic_disable_leader=False,
            broker_commit_every=1000,
            broker_commit_interval=1.0,
            stream_buffer_maxsize=4096,
            producer_acks=-1,
            store="memory://",
            datadir=str(s.data_dir / "{conf.name}-data"),
            table_standby_replicas=0,
            topic_replication_factor=1,
            web_in_thread=False,
            logging_config=None,
            loghandlers=[],
        )
        inbound = app.topic(s.topics.inbound, value_type=bytes, key_type=bytes)

        @app.agent(inbound, name="triage")
        async def triage(stream: Any) -> None:  # faust.Stream; take_events is untyped
            async for events in stream.take_events(s.batch_size, within=s.batch_within_s):
                await self.process_batch(events)

        @app.task  # type: ignore[untyped-decorator]
        async def prepare() -> None:  # runs before the agent gets partitions
            await self.start_producer()

        @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
        async def keep_ready_metric() -> None:
            await self._check_kafka()
            self.refresh_lag()

        classifier = self

        @app.page("/healthz")
        class Healthz(View):
            async def get(self, request: Request) -> Response:
                return self.json({"status": "ok", "service": SERVICE})

        @app.page("/readyz")
        class Readyz(View):
            async def get(self, request: Request) -> Response:
                ok, detail = await classifier._check_kafka()
                body = {
                    "status": "ready" if ok else "not ready",
                    "service": SERVICE,
                    "checks": {"kafka": detail},
                    "model_version": classifier.engine.model_version,
                }
                return self.json(body, status=200 if ok else 503)

        @app.page("/metrics")
        class Metrics(View):
            async def get(self, request: Request) -> Response:
                body, content_type = render_latest()
                return self.bytes(body, content_type=content_type.split(";")[0])

        return app

    async def start_producer(self) -> None:
        # Under a lock, and `producer`/`publisher` set only once started: the `prepare` task and
        # the agent's first batch both call this. Without it, a batch arriving while `prepare`
        # was still starting the producer (a restart with a backlog) saw a producer but no
        # publisher, raised, and faust's take_events acked the batch it never published: lost.
        async with self._producer_lock:
            if self.publisher is not None:
                return
            s = self.settings
            await ensure_topics(s.kafka_bootstrap_servers, s.topics)

            def new_producer() -> AIOKafkaProducer:
                return make_producer(s.kafka_bootstrap_servers, client_id="classifier")

            producer = new_producer()
            await producer.start()
            self.publisher = Publisher(
                producer, SERVICE, timeout_s=s.publish_timeout_s, renew=new_producer
            )

    async def stop_producer(self) -> None:
        async with self._producer_lock:
            if self.publisher is not None:
                publisher, self.publisher = self.publisher, None
                await publisher.stop()

    async def _check_kafka(self) -> tuple[bool, str]:
        if self.publisher is None:
            DEPENDENCY_UP.labels(SERVICE, "kafka").set(0)
            return False, "starting"
        try:
            await kafka_ready(self.publisher.producer)
        except Exception as exc:
            DEPENDENCY_UP.labels(SERVICE, "kafka").set(0)
            return False, f"failed: {type(exc).__name__}"
        DEPENDENCY_UP.labels(SERVICE, "kafka").set(1)
        return True, "ok"

    # ------------------------------------------------------------------ processing

    async def process_batch(self, events: list[Any]) -> None:
        """Triage a batch of faust events and publish results and dead letters, acked; then
        export the lag of the batch's partitions."""
        with PROCESSING_SECONDS.labels(SERVICE, self.topic).time():
            await self._process_batch(events)
        batch_ends: dict[Any, int] = {}
        for event in events:  # a partition's events arrive in offset order
            batch_ends[event.message.tp] = event.message.offset + 1
        self._next_offsets.update(batch_ends)
        self._export_lag(batch_ends)

    def refresh_lag(self) -> None:
        """Export the lag of every partition this replica has processed and still owns; forget
        (and stop exporting) the ones a rebalance gave to another replica, whose lag is now that
        replica's to report: a stale series here would add to the lag sum."""
        if not self._next_offsets:
            return
        try:
            assigned = self.app.consumer.assignment()
        except ConsumerNotStarted:
            return
        for tp in [tp for tp in self._next_offsets if tp not in assigned]:
            del self._next_offsets[tp]
            with contextlib.suppress(KeyError):  # never exported (no highwater known yet)
                CONSUMER_LAG.remove(SERVICE, self.topic, str(tp.partition))
        self._export_lag(self._next_offsets)

    def _export_lag(self, partitions: Iterable[Any]) -> None:
        """hotline_consumer_lag_messages as the runner computes it: the partition's highwater
        (the offset the next message will get) minus the next offset to process."""
        partitions = list(partitions)
        if not partitions:
            return
        consumer = self.app.consumer
        for tp in partitions:
            try:
                highwater = consumer.highwater(tp)
            except (ConsumerNotStarted, AssertionError):
                continue  # stopping, or revoked meanwhile (aiokafka asserts the assignment)
            if highwater is not None:
                lag = max(0, highwater - self._next_offsets[tp])
                CONSUMER_LAG.labels(SERVICE, self.topic, str(tp.partition)).set(lag)

    async def _process_batch(self, events: list[Any]) -> None:
        await self.start_producer()
        assert self.publisher is not None
        s = self.settings
        good: list[tuple[Any, InboundEvent]] = []
        outputs: list[Outgoing] = []
        for event in events:
            message = event.message
            raw: bytes | None = event.value
            try:
                if raw is None:
                    raise ValueError("empty value")
                good.append((event, InboundEvent.model_validate_json(raw)))
            except (ValidationError, ValueError) as exc:
                outputs.append(self._dead_letter(message, raw, exc))
        try:
            triaged = triage_events(self.engine, [inbound for _, inbound in good], self.clock)
        except Exception as exc:  # a bug on one message must not stop the partition
            log.exception("batch triage failed; triaging one by one")
            triaged = []
            for event, inbound in good:
                try:
                    triaged.extend(triage_events(self.engine, [inbound], self.clock))
                except Exception as one_exc:
                    outputs.append(self._dead_letter(event.message, event.value, one_exc))
            del exc
        for result in triaged:
            outputs.append(Outgoing.of(s.topics.triaged, result, key=result.key))
        # Wait for the broker before faust may commit these offsets; retry while it is away.
        backoff = 0.2
        while True:
            try:
                await self.publisher.publish_many(outputs)
                break
            except Exception as exc:
                self.retries += 1
                HANDLER_RETRIES.labels(SERVICE, self.topic).inc()
                log.warning("publish failed, retrying batch", extra={"error": str(exc)[:300]})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        CONSUMED.labels(SERVICE, self.topic, "processed").inc(len(triaged))
        self.processed += len(triaged)

    def _dead_letter(self, message: Any, raw: bytes | None, exc: Exception) -> Outgoing:
        reason = DeadLetterReason.INVALID
        if isinstance(exc, ValidationError):
            if any(err.get("type") == "json_invalid" for err in exc.errors()):
                reason = DeadLetterReason.UNDECODABLE
            detail = "; ".join(
                f"{'.'.join(str(p) for p in err.get('loc', ())) or '(value)'}: {err.get('msg')}"
                for err in exc.errors()[:5]
            )
        else:
            detail = f"{type(exc).__name__}: {exc}"
            reason = DeadLetterReason.HANDLER_ERROR if raw else DeadLetterReason.INVALID
        if raw is not None:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                reason, detail = DeadLetterReason.UNDECODABLE, "value is not UTF-8"
        CONSUMED.labels(SERVICE, self.topic, "deadlettered").inc()
        DEADLETTERS.labels(SERVICE, self.topic, reason.value).inc()
        self.deadlettered += 1
        log.warning(
            "dead-lettered",
            extra={"partition": message.partition, "offset": message.offset, "reason": reason},
        )
        letter = make_dead_letter(
            service=SERVICE,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=raw,
            reason=reason,
            detail=detail,
        )
        key = message.key.decode("utf-8", "replace") if message.key else None
        return Outgoing.of(self.settings.topics.deadletter, letter, key=key)
