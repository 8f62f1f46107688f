"""Reading and writing topics directly in tests (no consumer group, from the beginning)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    timeout_s: float = 15.0,
    idle_s: float = 1.0,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool] | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a topic from offset 0.

    Returns once `expect` records arrived (then waits `idle_s` more to catch extras, so a test
    can assert "exactly one"), once `until(records)` is true, or after `timeout_s`.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        for _ in range(50):
            if partitions:
                break
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or [])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout_s
        satisfied_at: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
            done = (expect is not None and len(records) >= expect) or (
                until is not None and until(records)
            )
            if done and satisfied_at is None:
                satisfied_at = time.monotonic()
            if satisfied_at is not None and time.monotonic() - satisfied_at >= idle_s:
                break
        return records
    finally:
        await consumer.stop()


async def produce(
    bootstrap: str, topic: str, values: list[bytes], key: bytes | None = None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


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
