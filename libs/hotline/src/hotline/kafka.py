"""Kafka clients with safe defaults, the "ensure topics" step, and a publisher with a deadline.

The consume → process → produce → commit loop lives in `hotline.runner`; everything that talks
to the broker is built here so defaults (acks=all, compression, manual commits)
are set in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from pydantic import BaseModel

from hotline.contracts.events import encode
from hotline.contracts.topics import ALL_TOPICS, TopicNames, TopicSpec
from hotline.logging import get_logger
from hotline.metrics import PRODUCED, PRODUCER_RENEWALS

log = get_logger(__name__)

TOPIC_ALREADY_EXISTS = 36


class PublishError(Exception):
    """The broker did not acknowledge a write within its deadline (the caller answers 503)."""


def make_producer(bootstrap_servers: str, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer that only reports success once every in-sync replica has it.

    Idempotent: the broker drops a batch the producer retries after a lost acknowledgement, so a
    retry never writes a record twice. lz4 keeps batches small at little CPU cost; a short linger
    lets concurrent requests share a batch.

    aiokafka 0.14 can wedge an idempotent producer (aio-libs/aiokafka#1017): a batch that waited
    longer than `request_timeout_ms` for a partition without a leader (a broker restart) is
    failed after it took a sequence number, and the broker then refuses every later batch to
    that partition with OutOfOrderSequenceNumber for the life of the producer (found by the e2e
    broker-restart test: ingest answered 503 forever). `Publisher` recovers from that state by
    replacing the producer (a new producer id starts its sequences afresh) when it was given a
    way to make one.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": "lz4",
        "linger_ms": 2,
        "max_batch_size": 256 * 1024,
        "max_request_size": 2 * 1024 * 1024,
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 100,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(
    bootstrap_servers: str,
    group_id: str,
    topics: Sequence[str],
    client_id: str,
    **overrides: Any,
) -> AIOKafkaConsumer:
    """A group consumer that never commits on its own: the runner commits after processing.

    `fetch_max_wait_ms` is Kafka's default 500: the broker answers a fetch as soon as one byte
    is there (fetch.min.bytes 1), so a longer wait costs no latency, while a short one made
    every idle consumer poll the broker 20 times a second (measured: most of the pipeline's
    CPU at low rates went to empty fetches, in the broker and in each service).
    """
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": 500,
        "max_poll_interval_ms": 600_000,
        "session_timeout_ms": 30_000,
        "heartbeat_interval_ms": 3_000,
        "fetch_max_wait_ms": 500,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


@dataclass(frozen=True)
class Outgoing:
    """A record a handler wants published."""

    topic: str
    value: bytes
    key: str | None = None

    @classmethod
    def of(cls, topic: str, model: BaseModel, key: str | None = None) -> Outgoing:
        return cls(topic=topic, value=encode(model), key=key)


RENEW_ON: tuple[type[KafkaError], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
)
"""Errors after which an idempotent producer's sequences no longer match the broker's."""


class Publisher:
    """Sends records and waits for the broker's acknowledgement, within a deadline.

    With `renew` (a factory of producers, e.g. `lambda: make_producer(...)`), a producer whose
    idempotence state the broker refuses (`RENEW_ON`) is replaced by a new, started one and the
    records are sent again within the same deadline. Always reach the producer through
    `publisher.producer` (readiness, shutdown): it may be a different object after a renewal.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        service: str,
        timeout_s: float = 5.0,
        renew: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self.producer = producer
        self.service = service
        self.timeout_s = timeout_s
        self.renew = renew
        self.renewals = 0
        self._renewing = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()
        PRODUCER_RENEWALS.labels(service)  # the series exists, at 0, from the first scrape

    async def publish(self, out: Outgoing, timeout_s: float | None = None) -> None:
        await self.publish_many([out], timeout_s)

    async def publish_many(self, outs: Iterable[Outgoing], timeout_s: float | None = None) -> None:
        """Queue every record, then wait until the broker acknowledged all of them.

        Raises PublishError when the broker is unreachable or slower than the deadline; some of
        the records may then still be written, which is why every consumer deduplicates.
        """
        deadline = self.timeout_s if timeout_s is None else timeout_s
        records = list(outs)
        try:
            async with asyncio.timeout(deadline):
                producer = self.producer
                try:
                    await self._send_all(producer, records)
                except RENEW_ON:
                    if self.renew is None:
                        raise
                    await self._replace(producer)
                    await self._send_all(self.producer, records)
        except (TimeoutError, KafkaError) as exc:
            raise PublishError(f"broker did not acknowledge within {deadline}s: {exc!r}") from exc
        for o in records:
            PRODUCED.labels(self.service, topic_label(o.topic)).inc()

    @staticmethod
    async def _send_all(producer: AIOKafkaProducer, records: list[Outgoing]) -> None:
        futures = [
            await producer.send(o.topic, o.value, key=o.key.encode() if o.key is not None else None)
            for o in records
        ]
        if futures:
            await asyncio.gather(*futures)

    async def _replace(self, failed: AIOKafkaProducer) -> None:
        """Swap in a new producer for `failed` (once, however many publishes saw it fail)."""
        assert self.renew is not None
        async with self._renewing:
            if self.producer is not failed:
                return  # a concurrent publish already replaced it
            fresh = self.renew()
            try:
                await fresh.start()
            except BaseException:
                # Broker unreachable, or the publish's deadline: close what was half started;
                # the next publish that is refused tries again.
                self._retire_later(fresh)
                raise
            self.producer = fresh
            self.renewals += 1
        PRODUCER_RENEWALS.labels(self.service).inc()
        log.warning(
            "kafka producer replaced: the broker refused its idempotence state",
            extra={"renewals": self.renewals},
        )
        # The old producer's pending batches fail with the same error; their publishers retry.
        self._retire_later(failed)

    def _retire_later(self, producer: AIOKafkaProducer) -> None:
        task = asyncio.create_task(self._retire(producer))
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    @staticmethod
    async def _retire(producer: AIOKafkaProducer) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 30)

    async def stop(self) -> None:
        """Stop the current producer and any replaced one still closing."""
        await self.producer.stop()
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)


def topic_label(topic: str) -> str:
    """Metric label for a topic: the registry name, without a test namespace prefix."""
    for spec in ALL_TOPICS:
        if topic.endswith(spec.name):
            return spec.name
    return "other"


async def kafka_ready(producer: AIOKafkaProducer, timeout_s: float = 2.0) -> None:
    """Readiness: a metadata request to the broker succeeds within the timeout."""
    async with asyncio.timeout(timeout_s):
        await producer.client.fetch_all_metadata()


async def ensure_topics(
    bootstrap_servers: str,
    names: TopicNames | None = None,
    specs: Sequence[TopicSpec] = ALL_TOPICS,
    replication_factor: int | None = None,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the registry's topics that do not exist yet (idempotent). Returns those created.

    Replication is capped at the number of brokers, so the same registry serves a single local
    broker and a three-broker cluster.
    """
    names = names or TopicNames.for_namespace("")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="hotline-topics")
    await admin.start()
    created: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            metadata = await admin.describe_cluster()
            brokers = max(1, len(metadata.get("brokers", [])))
            existing = set(await admin.list_topics())
            wanted: list[NewTopic] = []
            for resolved, spec in zip(names.all(), ALL_TOPICS, strict=True):
                if spec not in specs or resolved in existing:
                    continue
                rf = min(replication_factor or spec.replication_factor, brokers)
                config = spec.config()
                config["min.insync.replicas"] = str(min(int(config["min.insync.replicas"]), rf))
                wanted.append(NewTopic(resolved, spec.partitions, rf, topic_configs=config))
            if not wanted:
                return []
            response = await admin.create_topics(wanted)
            for topic, code, *rest in response.topic_errors:
                if code == 0:
                    created.append(topic)
                elif code != TOPIC_ALREADY_EXISTS:
                    raise RuntimeError(f"could not create topic {topic}: error {code} {rest}")
            if created:
                log.info("topics created", extra={"topics": created})
    finally:
        await admin.close()
    await wait_for_leaders(bootstrap_servers, created, timeout_s=timeout_s)
    return created


async def wait_for_leaders(
    bootstrap_servers: str, topics: Sequence[str], timeout_s: float = 30.0
) -> None:
    """Return once every partition of `topics` has a leader.

    A topic is usable a moment after CreateTopics returns; clients that touch it earlier get
    NotLeaderForPartition answers (retried, but logged as errors by aiokafka).
    """
    if not topics:
        return
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, client_id="hotline-topics")
    await client.bootstrap()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                metadata = await client.fetch_all_metadata()
                if all(_has_leaders(metadata, topic) for topic in topics):
                    return
                await asyncio.sleep(0.1)
    finally:
        await client.close()


def _has_leaders(metadata: ClusterMetadata, topic: str) -> bool:
    partitions = metadata.partitions_for_topic(topic)
    return bool(partitions) and all(
        metadata.leader_for_partition(TopicPartition(topic, p)) not in (None, -1)
        for p in partitions
    )


async def read_to_end(
    bootstrap: str, topic: str, timeout_s: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a topic from offset 0 up to its end offsets as they are now.

    Unlike `read_topic`, it returns as soon as it has caught up (no idle wait): for counting
    what a finished run wrote. Raises TimeoutError if it cannot catch up within `timeout_s`.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            metadata = await consumer._client.fetch_all_metadata()
            tps = [
                TopicPartition(topic, p) for p in sorted(metadata.partitions_for_topic(topic) or [])
            ]
            ends = await consumer.end_offsets(tps) if tps else {}
            pending = {tp for tp in tps if ends[tp] > 0}
            records: list[ConsumerRecord[bytes, bytes]] = []
            if not pending:
                return records
            consumer.assign(sorted(pending, key=lambda tp: tp.partition))
            await consumer.seek_to_beginning(*pending)
            while pending:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, recs in batch.items():
                    records.extend(r for r in recs if r.offset < ends[tp])
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
            return records
    finally:
        await consumer.stop()
