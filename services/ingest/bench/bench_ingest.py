#!/usr/bin/env python3
"""Ingest benchmark: signed webhook deliveries against one ingest process on the local stack.

    .venv/bin/python services/ingest/bench/bench_ingest.py [--seconds 20] [--rate 500]

Starts `python -m hotline_ingest.main` (uvicorn, one process) on a free port with its own topic
namespace and database, then measures over real HTTP/1.1 keep-alive connections:

1. sustained throughput: a closed loop of `--connections` connections sending distinct signed
   deliveries (Zalo, Viber, WhatsApp, Telegram, Twilio SMS in turn) for `--seconds`: accepted
   (2xx, broker-acknowledged, newly published) requests per second;
2. latency at `--rate` requests/s, open loop: requests are sent on a fixed schedule whether or
   not earlier ones finished, and latency is measured from the scheduled send time, so a stall
   shows up in the percentiles instead of silently slowing the sender (no coordinated omission).

The load generator is a minimal HTTP client over asyncio streams with every request signed and
serialised beforehand, so the numbers are the server's, not the client's. It prints figures; it
is not a test. Needs the local stack (`make stack-up`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hotline.contracts.topics import TopicNames
from hotline.testing.kafka import end_offsets
from hotline_ingest.samples import Delivery, Samples
from hotline_ingest.settings import IngestSettings

PUBLIC_BASE_URL = "https://hotline.example.vn"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- requests


def build_requests(samples: Samples, count: int, port: int, offset: int) -> list[bytes]:
    """`count` distinct signed deliveries, from many citizens, as raw HTTP/1.1 requests."""
    raw: list[bytes] = []
    for i in range(offset, offset + count):
        citizen = i % 5000  # many senders: the per-sender flood limit must not kick in
        kind = i % 5
        delivery: Delivery
        if kind == 0:
            delivery = samples.zalo(msg_id=f"bench-z-{i}", user_id=f"88001122{citizen:08d}")
        elif kind == 1:
            delivery = samples.viber(message_token=10**18 + i, sender_id=f"bench{citizen}==")
        elif kind == 2:
            message = samples.whatsapp_message(wamid=f"wamid.bench{i}", wa_id=f"849{citizen:08d}")
            delivery = samples.whatsapp(messages=[message])
        elif kind == 3:
            delivery = samples.telegram(update_id=10**8 + i, user_id=7_000_000_000 + citizen)
        else:
            delivery = samples.twilio_sms(
                message_sid=f"SMbench{i:027d}", from_=f"+849{citizen:08d}"
            )
        head = [f"POST {delivery.path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        head += [f"{k}: {v}" for k, v in delivery.headers.items()]
        head.append(f"Content-Length: {len(delivery.body)}")
        raw.append(("\r\n".join(head) + "\r\n\r\n").encode() + delivery.body)
    return raw


class Connection:
    """One keep-alive HTTP/1.1 connection; responses are read by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        status_line = await self.reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Tally:
    accepted: int = 0
    duplicates: int = 0
    other: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def record(self, status: int, body: bytes) -> None:
        if status < 300 and (b'"accepted":1' in body or body.startswith(b"<?xml")):
            self.accepted += 1
        elif status < 300:
            self.duplicates += 1
        else:
            self.other[status] = self.other.get(status, 0) + 1


# --------------------------------------------------------------------------- phases


async def closed_loop(port: int, requests: list[bytes], connections: int, seconds: float) -> Tally:
    tally = Tally()
    queue = iter(requests)
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            while time.perf_counter() < deadline:
                request = next(queue, None)
                if request is None:
                    return
                status, body = await conn.send(request)
                tally.record(status, body)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return tally


async def open_loop(port: int, requests: list[bytes], rate: float, pool: int) -> Tally:
    """Send `requests` at `rate`/s on a fixed schedule; latency from the scheduled time."""
    tally = Tally()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(pool):
        idle.put_nowait(await Connection.open(port))
    tasks: list[asyncio.Task[None]] = []

    async def one(request: bytes, scheduled: float) -> None:
        conn = await idle.get()  # waiting for a connection counts as latency
        try:
            status, body = await conn.send(request)
        finally:
            idle.put_nowait(conn)
        tally.latencies.append(time.perf_counter() - scheduled)
        tally.record(status, body)

    start = time.perf_counter() + 0.05
    interval = 1.0 / rate
    for i, request in enumerate(requests):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, scheduled)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return tally


def _histogram(metrics: str, name: str, label: str = "") -> dict[str, float]:
    """Cumulative bucket counts (by `le`), `sum` and `count` of a Prometheus histogram in the
    exposition text, summed over the series whose line contains `label`."""
    out: dict[str, float] = {}
    for line in metrics.splitlines():
        if not line.startswith(name) or label not in line:
            continue
        series, value = line.rsplit(" ", 1)
        if series.startswith(f"{name}_bucket"):
            le = series.split('le="', 1)[1].split('"', 1)[0]
            out[le] = out.get(le, 0.0) + float(value)
        elif series.startswith(f"{name}_sum"):
            out["sum"] = out.get("sum", 0.0) + float(value)
        elif series.startswith(f"{name}_count"):
            out["count"] = out.get("count", 0.0) + float(value)
    return out


def _between(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def _describe(hist: dict[str, float]) -> str:
    """Mean and the bucket bounds under which 50% and 99% of the observations fall."""
    count = hist.get("count", 0.0)
    if not count:
        return "no observations"
    bounds = sorted((float(k), v) for k, v in hist.items() if k not in ("sum", "count", "+Inf"))

    def bound(q: float) -> str:
        for le, cumulative in bounds:
            if cumulative >= q * count:
                return f"<= {le * 1000:g} ms"
        return "> the largest bucket"

    return f"mean {hist['sum'] / count * 1000:.1f} ms, p50 {bound(0.5)}, p99 {bound(0.99)}"


async def _scrape(port: int) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        return (await client.get("/metrics")).text


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


# --------------------------------------------------------------------------- main


@dataclass
class Target:
    """The ingest process under test and where its data goes."""

    bootstrap: str
    mongo_uri: str
    topics: TopicNames
    database: str
    port: int
    samples: Samples
    process: subprocess.Popen[bytes]
    log_path: Path


def start_ingest(args: argparse.Namespace) -> Target:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    mongo_uri = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    database = f"bench_{uuid.uuid4().hex[:8]}"
    port = free_port()
    settings = IngestSettings(
        environment="test", public_base_url=PUBLIC_BASE_URL, port=port, topic_namespace=namespace
    )
    env = {
        **os.environ,
        "HOTLINE_ENV": "test",
        "HOTLINE_TOPIC_NAMESPACE": namespace,
        "MONGODB_DATABASE": database,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MONGODB_URI": mongo_uri,
        "INGEST_PORT": str(port),
        "INGEST_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "LOG_LEVEL": args.log_level,
    }
    log_path = Path(args.log)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hotline_ingest.main"], env=env, stdout=log, stderr=log
        )
    return Target(
        bootstrap,
        mongo_uri,
        TopicNames.for_namespace(namespace),
        database,
        port,
        Samples(settings),
        process,
        log_path,
    )


async def run(args: argparse.Namespace, target: Target) -> None:
    port, samples, topics = target.port, target.samples, target.topics
    server, log_path, database = target.process, target.log_path, target.database
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise SystemExit(f"ingest did not become ready; see {log_path}")

        print(f"ingest pid {server.pid} on :{port}, topic {topics.inbound}, db {database}")
        print(f"machine: {os.cpu_count()} CPUs; Kafka and FerretDB on the same machine")
        budget = int(args.seconds * 4000) + 1000
        print(f"signing {budget + int(args.rate * args.seconds) + 1000} deliveries ...")
        warmup = build_requests(samples, 1000, port, 0)
        sustained = build_requests(samples, budget, port, 1000)
        paced = build_requests(samples, int(args.rate * args.seconds), port, 1000 + budget)

        await closed_loop(port, warmup, args.connections, 60)

        load_before = os.getloadavg()[0]
        cpu_before = _cpu_seconds(server.pid)
        started = time.perf_counter()
        tally = await closed_loop(port, sustained, args.connections, args.seconds)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(server.pid) - cpu_before
        print(
            f"\nsustained, closed loop, {args.connections} connections, {elapsed:.1f} s:\n"
            f"  accepted {tally.accepted / elapsed:,.0f} req/s ({tally.accepted} accepted, "
            f"{tally.duplicates} duplicates, other {tally.other or 'none'})\n"
            f"  ingest process: {cpu / elapsed * 100:.0f}% of a CPU, "
            f"{cpu / max(1, tally.accepted) * 1e6:.0f} µs CPU per accepted request "
            f"(load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} CPUs)"
        )

        await asyncio.sleep(3)  # let the broker and the database settle after the flood
        before = await _scrape(port)
        tally = await open_loop(port, paced, args.rate, args.connections)
        after = await _scrape(port)
        lat = [v * 1000 for v in tally.latencies]
        print(
            f"\nopen loop at {args.rate:.0f} req/s for {args.seconds:.0f} s "
            f"({len(lat)} requests, {tally.accepted} accepted, other {tally.other or 'none'}):\n"
            f"  p50 {percentile(lat, 50):.1f} ms  p90 {percentile(lat, 90):.1f} ms  "
            f"p99 {percentile(lat, 99):.1f} ms  max {max(lat):.1f} ms  "
            f"mean {statistics.fmean(lat):.1f} ms"
        )
        route = 'route="/webhooks/'
        request = _between(
            _histogram(after, "hotline_http_request_seconds", route),
            _histogram(before, "hotline_http_request_seconds", route),
        )
        publish = _between(
            _histogram(after, "hotline_ingest_publish_seconds"),
            _histogram(before, "hotline_ingest_publish_seconds"),
        )
        print(f"  server side: request {_describe(request)}")
        print(f"               waiting for the broker's ack {_describe(publish)}")
        published = sum((await end_offsets(target.bootstrap, topics.inbound)).values())
        print(f"\nrecords on the topic: {published}")
    finally:
        server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(server.wait, 30)
        if not args.keep:
            await _cleanup(target.bootstrap, target.mongo_uri, topics, database)


async def _cleanup(bootstrap: str, mongo_uri: str, topics: TopicNames, database: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from hotline.mongo import make_client

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics(topics.all())
    finally:
        await admin.close()
    client = make_client(mongo_uri, "bench-cleanup")
    with contextlib.suppress(Exception):
        await client.drop_database(database)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests/s")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--log-level", default="INFO", help="the server's LOG_LEVEL")
    parser.add_argument(
        "--log", default=str(Path(tempfile.gettempdir()) / "bench-ingest.log"), help="its output"
    )
    parser.add_argument("--keep", action="store_true", help="keep the topics and database")
    args = parser.parse_args()
    asyncio.run(run(args, start_ingest(args)))


if __name__ == "__main__":
    main()
