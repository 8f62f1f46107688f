"""Dispatcher benchmark on the local stack: decisions/s and triaged → dispatched latency.

    .venv/bin/python services/dispatcher/bench/bench_dispatcher.py [--events 20000] [--rate 100]

Runs the real service (consumers, batch step, case writes in FerretDB/MongoDB) in this process
against its own topics and database, then:

1. **throughput** — produces `--events` triaged reports (distinct incidents across the nine
   districts and categories, ~10 % greetings, some follow-ups) as fast as the producer can, and
   measures the time until every decision is on `hotline.dispatched.v1`;
2. **latency** — produces `--rate` events per second for `--seconds`, and measures each event's
   time from being produced on `hotline.triaged.v1` to its decision being readable on
   `hotline.dispatched.v1` (p50, p95, p99, max).

Everything it creates (topics, database) is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from hotline.contracts.events import TriagedEvent, encode
from hotline.contracts.labels import Category, District
from hotline.contracts.topics import TopicNames
from hotline.kafka import ensure_topics
from hotline.logging import configure_logging
from hotline.mongo import make_client
from hotline_dispatcher.config import load_organisation
from hotline_dispatcher.main import build
from hotline_dispatcher.testing import settings_for, triaged

TEMPLATES: dict[Category, list[str]] = {
    Category.TRAFFIC: ["Tai nạn xe máy với ô tô", "Đua xe tụ tập đông người", "Xe tải chở quá tải"],
    Category.PUBLIC_ORDER: ["Hát karaoke ồn ào quá khuya", "Nhóm thanh niên say rượu gây rối"],
    Category.VIOLENCE: ["Có người đánh nhau bằng dao", "Chồng đánh vợ, hàng xóm kêu cứu"],
    Category.THEFT: ["Vừa bị trộm xe máy", "Bị giật túi xách", "Nhà bị trộm đột nhập"],
    Category.DRUGS: ["Có tụ điểm sử dụng ma túy", "Thấy người bán ma túy"],
    Category.GAMBLING: ["Có sòng bạc hoạt động", "Đánh bạc ăn tiền tại quán"],
    Category.FRAUD: ["Bị lừa chuyển tiền qua mạng", "Giả danh công an gọi điện đòi tiền"],
    Category.FIRE_RESCUE: ["Cháy nhà, khói bốc cao", "Có người đuối nước"],
    Category.ENVIRONMENT: ["Khai thác cát trái phép", "Đổ rác thải ra sông"],
    Category.OFFICER_CONDUCT: ["Cán bộ trực ban thái độ không đúng mực"],
    Category.ADMIN_REQUEST: ["Hỏi thủ tục làm căn cước", "Hỏi đăng ký tạm trú"],
    Category.OTHER: ["Mất giấy tờ tùy thân", "Chó thả rông cắn người"],
}
STREETS = [
    "Lê Lợi",
    "Hùng Vương",
    "Trần Hưng Đạo",
    "Nguyễn Huệ",
    "Bà Triệu",
    "Điện Biên Phủ",
    "Phan Đình Phùng",
    "Nguyễn Trãi",
    "Lê Duẩn",
    "Chi Lăng",
    "Huỳnh Thúc Kháng",
    "Mai Thúc Loan",
    "Đinh Tiên Hoàng",
    "Nguyễn Sinh Cung",
    "Tố Hữu",
    "Võ Văn Kiệt",
    "Ngự Bình",
    "Kim Long",
    "Phú Hậu",
    "An Dương Vương",
]


def make_event(i: int, rng: random.Random, now: datetime) -> TriagedEvent:
    """Distinct incidents in every district and category; ~10 % greetings, ~5 % follow-ups."""
    if rng.random() < 0.1:
        return triaged(
            "Chào anh, chúc anh sức khỏe",
            category="greeting",
            priority="P4",
            location=None,
            user_id=f"g{i}",
            at=now,
        )
    category = rng.choice(list(TEMPLATES))
    text = (
        f"{rng.choice(TEMPLATES[category])} ở số {rng.randint(1, 400)} đường "
        f"{rng.choice(STREETS)}, kiệt {rng.randint(1, 120)}"
    )
    if i > 0 and rng.random() < 0.05:  # more information from an earlier reporter
        return triaged(
            f"Bổ sung thông tin: {text}",
            category="other",
            priority="P3",
            location=None,
            user_id=f"c{rng.randrange(i)}",
            at=now,
        )
    return triaged(
        text,
        category=category,
        priority=rng.choice(["P1", "P2", "P3"]),
        location=rng.choice([*District, None]),
        user_id=f"c{i}",
        at=now,
    )


async def consume_until(
    bootstrap: str, topic: str, wanted: set[str], timeout_s: float, stamps: dict[str, float]
) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while wanted - stamps.keys() and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=50, max_records=5000)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    value = r.value or b""
                    start = value.find(b'"event_id":"') + 12
                    event_id = value[start : value.find(b'"', start)].decode()
                    if event_id in wanted:
                        stamps.setdefault(event_id, now)
    finally:
        await consumer.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    configure_logging("bench", "WARNING", json_lines=False)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    mongo_uri = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    database = f"bench_{uuid.uuid4().hex[:8]}"
    topics = TopicNames.for_namespace(namespace)
    await ensure_topics(bootstrap, topics)
    settings = settings_for(
        kafka=bootstrap,
        mongo_uri=mongo_uri,
        database=database,
        namespace=namespace,
        log_level="WARNING",
    )
    components = build(settings, load_organisation(), maintenance=False)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        acks="all",
        compression_type="lz4",
        max_batch_size=512 * 1024,
    )
    await producer.start()
    rng = random.Random(42)
    try:
        async with components.app.router.lifespan_context(components.app):
            # warm-up: the consumer group joins, the first day's sequence is read
            warm = [make_event(-i - 1, rng, datetime.now(UTC)) for i in range(50)]
            stamps: dict[str, float] = {}
            consumer = asyncio.create_task(
                consume_until(bootstrap, topics.dispatched, {e.event_id for e in warm}, 60, stamps)
            )
            for e in warm:
                await producer.send(topics.triaged, encode(e), key=e.key.encode())
            await producer.flush()
            await consumer

            # 1. throughput
            events = [make_event(i, rng, datetime.now(UTC)) for i in range(args.events)]
            payloads = [(encode(e), e.key.encode()) for e in events]
            stamps = {}
            consumer = asyncio.create_task(
                consume_until(
                    bootstrap, topics.dispatched, {e.event_id for e in events}, 600, stamps
                )
            )
            await asyncio.sleep(1.0)
            start = time.perf_counter()
            for value, key in payloads:
                await producer.send(topics.triaged, value, key=key)
            await producer.flush()
            produced = time.perf_counter() - start
            await consumer
            done = max(stamps.values()) - start if stamps else float("nan")
            print(
                f"throughput: {len(stamps)}/{len(events)} decisions in {done:.2f}s "
                f"= {len(stamps) / done:.0f} decisions/s (producing took {produced:.2f}s)"
            )

            # 2. latency at a steady rate
            n = int(args.rate * args.seconds)
            events = [make_event(args.events + i, rng, datetime.now(UTC)) for i in range(n)]
            sent: dict[str, float] = {}
            stamps = {}
            consumer = asyncio.create_task(
                consume_until(
                    bootstrap,
                    topics.dispatched,
                    {e.event_id for e in events},
                    args.seconds + 60,
                    stamps,
                )
            )
            await asyncio.sleep(1.0)
            t0 = time.perf_counter()
            for i, e in enumerate(events):
                due = t0 + i / args.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                event = e.model_copy(update={"received_at": datetime.now(UTC)})
                await producer.send_and_wait(topics.triaged, encode(event), key=e.key.encode())
                sent[e.event_id] = time.perf_counter()
            await consumer
            latencies = sorted((stamps[k] - sent[k]) * 1000 for k in sent if k in stamps)
            q = statistics.quantiles(latencies, n=100)
            print(
                f"latency at {args.rate:.0f}/s for {args.seconds:.0f}s "
                f"({len(latencies)}/{n} decided): p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, "
                f"p99 {q[98]:.1f} ms, max {latencies[-1]:.1f} ms "
                "(produced on triaged → readable on dispatched)"
            )
    finally:
        await producer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics(topics.all())
        finally:
            await admin.close()
        client = make_client(mongo_uri, "bench-cleanup")
        await client.drop_database(database)
        client.close()


if __name__ == "__main__":
    asyncio.run(main())
