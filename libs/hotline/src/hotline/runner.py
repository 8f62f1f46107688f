"""The consume → process → produce → commit loop, written once for every service.

A service supplies only a `Handler`: given one decoded message, return the records to publish.
The runner keeps three failure kinds apart (as getsentry/arroyo does):

* **poison** — bytes that are not JSON, or JSON that fails the topic's schema, or a handler
  that raises `Poison`: the message goes to the dead-letter topic with its reason and the
  partition moves on. A handler that keeps failing with an unexpected error is treated the same
  after `max_attempts`, so one bad message never blocks a partition.
* **transient** — the database or the broker is unavailable: nothing is committed, the runner
  backs off and retries the same message until it succeeds (nothing is lost, nothing skipped).
* **everything else inside the runner itself** — it crashes; the process supervisor restarts it
  and the group resumes from the last committed offsets.

Offsets are committed only after every output and every dead letter of the batch was
acknowledged by the broker. Partitions of a batch are processed concurrently, messages of one
partition in order, so one citizen's messages (same key) keep their order. A service whose
handler waits on the network for most of its time (the notifier calls providers) sets
`key_concurrency` > 1: messages of one partition with *different* keys then run concurrently
(at most that many keys at once in the whole runner), while messages with the same key still
run one after the other in offset order. The outputs of a key keep their order.

Such a runner is also *pipelined*: it does not wait for a poll's records to finish before it
polls again. A record starts as soon as it is fetched, once the previous record of its key (in
its partition) has finished and its outputs were acknowledged; each record's outputs are
published when it finishes; a partition's offset advances past a record only when it and every
record before it have finished, so a crash redelivers from the oldest unfinished one. At most
`batch_size` records are in flight. A slow record therefore delays only the records of its own
key, not everything fetched after it (a poll-at-a-time runner made every alert wait for the
slowest of the batch in hand: the notifier's share of the pipeline's latency). Before its
partitions are revoked in a rebalance, the runner finishes what it holds of them and commits,
so the next owner never runs a record this one is still running.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaError
from pydantic import BaseModel, ValidationError
from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

from hotline.contracts.events import DeadLetter, DeadLetterReason
from hotline.ids import new_event_id
from hotline.kafka import Outgoing, Publisher, PublishError, topic_label
from hotline.logging import get_logger
from hotline.metrics import (
    CONSUMED,
    CONSUMER_LAG,
    DEADLETTERS,
    HANDLER_RETRIES,
    PROCESSING_SECONDS,
)

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)

DEADLETTER_VALUE_LIMIT = 64 * 1024


def precreate_deadletter_series(
    service: str,
    source_topic: str,
    reasons: Iterable[DeadLetterReason] = tuple(DeadLetterReason),
) -> None:
    """Export `hotline_deadletters_total{service, source_topic, reason}` at 0 for every reason
    before the first dead letter: a series that appears already at 1 gives `increase()` nothing
    to compare with, so the alert on dead letters would miss the first one. The reasons are the
    bounded `DeadLetterReason` enum, so this adds a handful of series per consumer."""
    for reason in reasons:
        DEADLETTERS.labels(service, source_topic, DeadLetterReason(reason).value)


class Poison(Exception):
    """Raised by a handler for a message that can never be processed; it is dead-lettered."""

    def __init__(self, detail: str, reason: DeadLetterReason = DeadLetterReason.INVALID) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Transient(Exception):
    """Raised by a handler when a dependency is unavailable; the message is retried."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    Transient,
    PublishError,
    AutoReconnect,
    ConnectionFailure,
    ServerSelectionTimeoutError,
    KafkaConnectionError,
    TimeoutError,
    ConnectionError,
)


@dataclass(frozen=True)
class Message(Generic[M]):
    """A decoded message with where it came from."""

    value: M
    record: ConsumerRecord[bytes, bytes]

    @property
    def key(self) -> str | None:
        return self.record.key.decode("utf-8", "replace") if self.record.key else None


Handler = Callable[[Message[M]], Awaitable[Sequence[Outgoing]]]


@dataclass
class RunnerConfig:
    service: str
    topic: str
    deadletter_topic: str
    max_attempts: int = 3
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0
    poll_timeout_ms: int = 500
    batch_size: int = 500
    key_concurrency: int = 1
    """How many keys the runner processes at once (1: each partition strictly in offset order)."""
    commit_interval_s: float = 1.0
    """Offsets of processed batches are committed at most this often, and whenever a poll comes
    back empty or the runner stops (0: after every batch). A crash redelivers at most this much
    already-processed input, which the idempotent handlers absorb; at low rates, where every
    message is a batch of its own, it spares the broker a commit per message and consumer."""
    linger_ms: int = 0
    """Poll-at-a-time mode: a poll that returns less than `batch_size` waits this long for more
    records before the batch is processed (0: process what the poll returned). A handler whose
    cost is per batch (one claim insert, one decision pass) then pays it once for several
    records under load, for at most this much added latency; an idle consumer still waits on
    the broker's long poll, so idling costs nothing more (unlike a larger `fetch.min.bytes`,
    which makes the broker answer every `fetch.max.wait` with nothing)."""


@dataclass
class RunnerStats:
    processed: int = 0
    deadlettered: int = 0
    retries: int = 0
    batches: int = 0
    last_error: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Runner(Generic[M]):
    """Runs a handler over a consumer group, with dead-lettering and commit-after-produce."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        publisher: Publisher,
        model: type[M],
        handler: Handler[M],
        config: RunnerConfig,
    ) -> None:
        self.consumer = consumer
        self.publisher = publisher
        self.model = model
        self.handler = handler
        self.config = config
        self.stats = RunnerStats()
        self._stopping = asyncio.Event()
        self._topic_label = topic_label(config.topic)
        precreate_deadletter_series(config.service, self._topic_label)
        self._key_slots = asyncio.Semaphore(max(1, config.key_concurrency))
        self._pending: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        # Pipelined mode (key_concurrency > 1): the records in flight per partition, in offset
        # order, each [offset, finished]; the last task of each (partition, key); a wake-up for
        # the poll loop when a record finishes; the first error of the runner itself.
        self._in_flight: dict[TopicPartition, deque[list[int]]] = {}
        self._key_tails: dict[tuple[TopicPartition, bytes | None], asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = asyncio.Event()
        self._failure: BaseException | None = None

    @property
    def pipelined(self) -> bool:
        return self.config.key_concurrency > 1

    def stop(self) -> None:
        """Finish the batch in hand, commit it, and return from `run`."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        if self.pipelined:
            await self._run_pipelined()
            return
        try:
            while not self._stopping.is_set():
                batches = await self.consumer.getmany(
                    timeout_ms=self.config.poll_timeout_ms, max_records=self.config.batch_size
                )
                if not batches:
                    await self.commit_pending()
                    continue
                if self.config.linger_ms > 0:
                    await self._linger(batches)
                await self.process_batches(batches)
        finally:
            await self.commit_pending()

    async def _linger(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Top a partial poll up with what arrives within `linger_ms` (in place, in order)."""
        room = self.config.batch_size - sum(len(records) for records in batches.values())
        if room <= 0:
            return
        await asyncio.sleep(self.config.linger_ms / 1000)
        more = await self.consumer.getmany(timeout_ms=0, max_records=room)
        for tp, records in more.items():
            batches.setdefault(tp, []).extend(records)

    async def process_batches(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Process one poll's worth of records and commit them (public for tests)."""
        with PROCESSING_SECONDS.labels(self.config.service, self._topic_label).time():
            results = await asyncio.gather(
                *(self._process_partition(records) for records in batches.values())
            )
            outputs = [out for result in results for out in result]
            await self._publish_with_retry(outputs)
            self._pending.update(
                {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
            )
            loop = asyncio.get_running_loop()
            if loop.time() - self._last_commit >= self.config.commit_interval_s:
                await self.commit_pending()
        self.stats.batches += 1
        for tp, records in batches.items():
            highwater = self.consumer.highwater(tp)
            if highwater is not None and records:
                CONSUMER_LAG.labels(self.config.service, self._topic_label, str(tp.partition)).set(
                    max(0, highwater - records[-1].offset - 1)
                )

    async def commit_pending(self) -> None:
        """Commit the offsets of every batch processed (and published) so far."""
        if not self._pending:
            return
        offsets, self._pending = self._pending, {}
        self._last_commit = asyncio.get_running_loop().time()
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group rebalanced under us, or the consumer is stopping: the next owner
            # re-reads from the last commit and the idempotent handlers make the repeat harmless.
            log.warning("commit failed, batch will be redelivered", extra={"error": str(exc)})

    # ------------------------------------------------------------------ pipelined mode

    async def _run_pipelined(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._failure is not None:
                    raise self._failure
                self._finished.clear()  # before counting: a record finishing now sets it again
                room = self.config.batch_size - self.in_flight
                if room <= 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._finished.wait(), 1.0)
                    continue
                batches = await self.consumer.getmany(
                    timeout_ms=self.config.poll_timeout_ms, max_records=room
                )
                if not batches:
                    await self.commit_pending()
                    continue
                for tp, records in batches.items():
                    for record in records:
                        self._start(tp, record)
                self.stats.batches += 1
                if asyncio.get_running_loop().time() - self._last_commit >= (
                    self.config.commit_interval_s
                ):
                    await self.commit_pending()
        finally:
            await self.finish()
            await self.commit_pending()

    @property
    def in_flight(self) -> int:
        """Records fetched and not finished yet (pipelined mode)."""
        return sum(len(queue) for queue in self._in_flight.values())

    def _start(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        entry = [record.offset, 0]
        self._in_flight.setdefault(tp, deque()).append(entry)
        key = (tp, record.key)
        task = asyncio.create_task(self._run_record(tp, record, entry, self._key_tails.get(key)))
        self._key_tails[key] = task
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._key_tails.get(key) is finished:
                del self._key_tails[key]
            failed = not finished.cancelled() and finished.exception() is not None
            if failed and self._failure is None and not self._stopping.is_set():
                self._failure = finished.exception()
            self._finished.set()

        task.add_done_callback(done)

    async def _run_record(
        self,
        tp: TopicPartition,
        record: ConsumerRecord[bytes, bytes],
        entry: list[int],
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            # The same key's previous record first (its outcome is its own business: a record
            # that could not finish leaves its offset uncommitted, which redelivers this too).
            await asyncio.wait([previous])
        started = asyncio.get_running_loop().time()
        async with self._key_slots:
            outputs = await self._process_record(record)
            await self._publish_with_retry(outputs)
        PROCESSING_SECONDS.labels(self.config.service, self._topic_label).observe(
            asyncio.get_running_loop().time() - started
        )
        entry[1] = 1
        queue = self._in_flight[tp]
        while queue and queue[0][1]:
            self._pending[tp] = queue.popleft()[0] + 1
        highwater = self.consumer.highwater(tp)
        if highwater is not None and tp in self._pending:
            CONSUMER_LAG.labels(self.config.service, self._topic_label, str(tp.partition)).set(
                max(0, highwater - self._pending[tp])
            )

    async def finish(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Wait for the records in flight (of `partitions`, or all) to finish (pipelined)."""
        wanted = None if partitions is None else set(partitions)
        while True:
            tasks = [
                task
                for (tp, _), task in list(self._key_tails.items())
                if wanted is None or tp in wanted
            ]
            if not tasks:
                return
            await asyncio.wait(tasks)

    async def on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Before a rebalance takes partitions away: finish their records and commit them."""
        partitions = set(revoked)
        if not self.pipelined or not partitions:
            return
        await self.finish(partitions)
        await self.commit_pending()
        for tp in partitions:
            self._in_flight.pop(tp, None)
            self._pending.pop(tp, None)

    async def _process_partition(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[Outgoing]:
        if self.config.key_concurrency <= 1 or len(records) == 1:
            return await self._process_in_order(records)
        by_key: dict[bytes | None, list[ConsumerRecord[bytes, bytes]]] = {}
        for record in records:
            by_key.setdefault(record.key, []).append(record)

        async def one_key(group: list[ConsumerRecord[bytes, bytes]]) -> list[Outgoing]:
            async with self._key_slots:
                return await self._process_in_order(group)

        results = await asyncio.gather(*(one_key(group) for group in by_key.values()))
        return [out for result in results for out in result]

    async def _process_in_order(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[Outgoing]:
        outputs: list[Outgoing] = []
        for record in records:
            outputs.extend(await self._process_record(record))
        return outputs

    async def _process_record(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        try:
            value = self._decode(record)
        except Poison as poison:
            return [self._deadletter(record, poison.reason, poison.detail, attempts=1)]
        attempts = 0
        backoff = self.config.backoff_initial_s
        while True:
            attempts += 1
            try:
                outs = list(await self.handler(Message(value=value, record=record)))
                CONSUMED.labels(self.config.service, self._topic_label, "processed").inc()
                self.stats.processed += 1
                return outs
            except Poison as poison:
                return [self._deadletter(record, poison.reason, poison.detail, attempts)]
            except TRANSIENT_ERRORS as exc:
                # A dependency is down: retry this same message for as long as it takes.
                attempts -= 1
                self.stats.retries += 1
                self.stats.last_error = repr(exc)
                HANDLER_RETRIES.labels(self.config.service, self._topic_label).inc()
                log.warning(
                    "dependency unavailable, retrying",
                    extra={"error": repr(exc)[:300], "backoff_s": round(backoff, 2)},
                )
                if self._stopping.is_set():
                    raise
            except Exception as exc:
                self.stats.last_error = repr(exc)
                if attempts >= self.config.max_attempts:
                    detail = "".join(traceback.format_exception_only(exc)).strip()
                    log.exception("handler failed repeatedly, dead-lettering")
                    return [
                        self._deadletter(
                            record, DeadLetterReason.HANDLER_ERROR, detail[:2000], attempts
                        )
                    ]
                log.warning("handler error, retrying", extra={"error": repr(exc)[:300]})
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, self.config.backoff_max_s)

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> M:
        raw = record.value
        if raw is None:
            raise Poison("empty value (tombstone) on a non-compacted topic")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Poison(f"value is not UTF-8: {exc}", DeadLetterReason.UNDECODABLE) from exc
        try:
            return self.model.model_validate_json(raw)
        except ValidationError as exc:
            kind = DeadLetterReason.INVALID
            if any(err.get("type") == "json_invalid" for err in exc.errors()):
                kind = DeadLetterReason.UNDECODABLE
            raise Poison(_summarise_validation(exc), kind) from exc

    def _deadletter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: DeadLetterReason,
        detail: str,
        attempts: int,
    ) -> Outgoing:
        CONSUMED.labels(self.config.service, self._topic_label, "deadlettered").inc()
        DEADLETTERS.labels(self.config.service, self._topic_label, reason.value).inc()
        self.stats.deadlettered += 1
        log.warning(
            "dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason.value,
                "detail": detail[:300],
            },
        )
        return Outgoing.of(
            self.config.deadletter_topic,
            make_dead_letter(
                service=self.config.service,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                reason=reason,
                detail=detail,
                attempts=attempts,
            ),
            key=record.key.decode("utf-8", "replace") if record.key else None,
        )

    async def _publish_with_retry(self, outputs: list[Outgoing]) -> None:
        backoff = self.config.backoff_initial_s
        while True:
            try:
                await self.publisher.publish_many(outputs)
                return
            except PublishError as exc:
                self.stats.retries += 1
                HANDLER_RETRIES.labels(self.config.service, self._topic_label).inc()
                log.warning("publish failed, retrying batch", extra={"error": str(exc)[:300]})
                if self._stopping.is_set():
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max_s)


def make_dead_letter(
    *,
    service: str,
    topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    value: bytes | None,
    reason: DeadLetterReason,
    detail: str,
    attempts: int = 1,
) -> DeadLetter:
    """Wrap an unprocessable message, keeping its bytes (capped) so it can be replayed."""
    raw = (value or b"")[:DEADLETTER_VALUE_LIMIT]
    encoding: Literal["utf-8", "base64"]
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return DeadLetter(
        dlq_id=new_event_id(),
        service=service,
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", "replace") if key else None,
        value=text,
        value_encoding=encoding,
        reason=reason,
        detail=detail[:4000],
        attempts=attempts,
        failed_at=datetime.now(UTC),
    )


def _summarise_validation(exc: ValidationError) -> str:
    """'field.path: message' for the first few errors, naming what was wrong."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(value)"
        parts.append(f"{loc}: {err.get('msg')}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def describe(record: ConsumerRecord[Any, Any]) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


class ConsumerWorker(Generic[M]):
    """A runner with its own group consumer, attachable to a service's lifecycle.

    The publisher (one producer per process) is shared with the rest of the service.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        model: type[M],
        handler: Handler[M],
        config: RunnerConfig,
        publisher: Publisher,
        **consumer_overrides: Any,
    ) -> None:
        from hotline.kafka import make_consumer

        self.consumer = make_consumer(
            bootstrap_servers,
            group_id,
            [],
            client_id=f"{config.service}-{group_id}",
            **consumer_overrides,
        )
        self.runner: Runner[M] = Runner(self.consumer, publisher, model, handler, config)
        self.consumer.subscribe([config.topic], listener=_FinishBeforeRevoke(self.runner))
        self._started = False

    async def start(self) -> None:
        await self.consumer.start()
        self._started = True

    async def run(self) -> None:
        await self.runner.run()

    async def stop(self) -> None:
        self.runner.stop()
        if self._started:
            await self.consumer.stop()
            self._started = False

    def attach(self, lifecycle: Any) -> None:
        """Register start, run and stop with a `hotline.service.Lifecycle`."""
        lifecycle.on_startup(self.start)
        lifecycle.run_in_background(self.run)
        lifecycle.on_shutdown(self.stop)


class _FinishBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """A pipelined runner finishes and commits what it holds of the partitions a rebalance
    takes away before they go (aiokafka awaits this before it rejoins the group)."""

    def __init__(self, runner: Runner[Any]) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.runner.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        return None
