"""Throughput of the classifier agent on the local broker: hotline.inbound.v1 -> hotline.triaged.v1.

Run (stack up: ``make stack-up``)::

    .venv/bin/python services/classifier/bench/bench_agent.py [--events 20000]

A backlog of ``--events`` inbound events (corpus texts, realistic sizes) is written to a fresh,
namespaced inbound topic first; then one classifier process (``python -m hotline_classifier.main``,
the same process Kubernetes runs) is started and the time from its first triaged record to the
last is measured, with the process's CPU seconds. A second figure, the time from start-up to the
last record, includes faust's start and the consumer group join. It prints figures; it is not a
test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from hotline.contracts import example
from hotline.contracts.topics import TopicNames
from hotline.ids import new_event_id
from hotline.kafka import make_producer
from hotline_cli.pipeline import Pipeline, process_usage

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
EXAMPLE = example("InboundEvent")


def corpus_texts() -> list[str]:
    texts: list[str] = []
    for name in ("train.jsonl", "heldout.jsonl"):
        with (CORPUS / name).open(encoding="utf-8") as handle:
            texts += [json.loads(line)["text"] for line in handle if line.strip()]
    return texts


async def fill(bootstrap: str, topic: str, count: int) -> float:
    texts = corpus_texts()
    producer = make_producer(bootstrap, "bench-agent-source")
    await producer.start()
    began = time.perf_counter()
    try:
        futures = []
        for i in range(count):
            event = dict(EXAMPLE, event_id=new_event_id(), text=texts[i % len(texts)])
            key = f"zalo:bench-{i % 997}".encode()
            futures.append(await producer.send(topic, json.dumps(event).encode(), key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - began


async def drain(bootstrap: str, topic: str, count: int, timeout_s: float) -> tuple[float, float]:
    """Wall-clock times (perf_counter) of the first and the last triaged record."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    first = last = 0.0
    seen = 0
    deadline = time.perf_counter() + timeout_s
    try:
        while seen < count and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            got = sum(len(records) for records in batches.values())
            if got:
                now = time.perf_counter()
                first = first or now
                last = now
                seen += got
    finally:
        await consumer.stop()
    if seen < count:
        raise SystemExit(f"only {seen} of {count} triaged events within {timeout_s:.0f} s")
    return first, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    pipeline = Pipeline(
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        mongodb_uri=os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/"),
        services=("classifier",),
        partitions=6,
    )
    topics = TopicNames.for_namespace(pipeline.namespace)
    pipeline.create_topics(6)
    fill_s = asyncio.run(fill(pipeline.kafka_bootstrap, topics.inbound, args.events))
    print(f"backlog: {args.events} inbound events written in {fill_s:.1f} s", flush=True)
    started = time.perf_counter()
    try:
        pipeline.start()
        pid = pipeline.pids()["classifier"]
        first, last = asyncio.run(
            drain(pipeline.kafka_bootstrap, topics.triaged, args.events, args.timeout)
        )
        usage = process_usage(pid)
        cpu = usage.cpu_s if usage is not None else float("nan")
    finally:
        pipeline.stop()
        pipeline.delete_data()
    steady = args.events / max(last - first, 1e-9)
    overall = args.events / (last - started)
    print(
        f"classifier agent, 1 process, 6 partitions, {args.events} events: "
        f"{steady:,.0f} events/s first->last triaged, {overall:,.0f} events/s including start-up "
        f"({last - started:.1f} s); {cpu:.1f} CPU s in all (start-up included) = "
        f"{args.events / max(cpu, 1e-9):,.0f} events per CPU-second"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
