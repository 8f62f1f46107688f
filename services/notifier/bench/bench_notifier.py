"""Notifier benchmark: hotline.dispatched.v1 → the provider sandbox, on the real local stack.

Two figures (issue 6): sustained alerts/s (a backlog of decisions consumed as fast as the
notifier can alert), and the p99 latency from a decision being published to
`hotline.dispatched.v1` to the provider accepting the alert, at a steady 100 decisions/s.

The sandbox runs as a separate process (like a real provider); the notifier runs in this
process with its real Kafka consumers, MongoDB (FerretDB) claims and the shared HTTP client.
Each decision alerts one officer by SMS (Twilio format); provider rate limits are lifted for
the run (they would otherwise be the bottleneck by design). Run:

    .venv/bin/python services/notifier/bench/bench_notifier.py [--backlog 5000] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import hotline.contracts.events as events
from hotline.clock import SystemClock
from hotline.contracts.events import DispatchDecision, encode
from hotline.kafka import Publisher, ensure_topics, make_producer
from hotline.logging import configure_logging
from hotline.mongo import make_client
from hotline_cli.bench import stack_pids
from hotline_cli.pipeline import free_port, process_usage
from hotline_notifier.main import build_http
from hotline_notifier.service import Notifier
from hotline_notifier.settings import NotifierSettings, RateLimit

EXAMPLE = json.loads(
    (Path(events.__file__).parent / "examples" / "DispatchDecision.json").read_text()
)
OFFICER = {
    "person_id": "bench-o1",
    "name": "Cán bộ trực",
    "role": "officer",
    "unit_id": "ca-tp-hue",
    "contacts": [{"channel": "sms", "address": "+84905111222"}],
}


ROOT = Path(__file__).resolve().parents[3]


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each process still alive."""
    out = {}
    for name, pid in pids.items():
        usage = process_usage(pid)
        if usage is not None:
            out[name] = usage.cpu_s
    return out


async def start_sandbox() -> tuple[asyncio.subprocess.Process, str]:
    """The provider sandbox in its own process (like a real provider), once it answers; its
    base URL. Stop it with `stop_sandbox`."""
    http_port = free_port()
    env = {**os.environ, "SANDBOX_PORT": str(http_port), "SANDBOX_SMTP_PORT": str(free_port())}
    sandbox = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotline_sandbox.main",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{http_port}"
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/healthz")).status_code == 200:
                    return sandbox, base
            await asyncio.sleep(0.1)
    await stop_sandbox(sandbox)
    raise TimeoutError("the sandbox did not answer /healthz within 10 s")


async def stop_sandbox(sandbox: asyncio.subprocess.Process) -> None:
    if sandbox.returncode is None:
        sandbox.terminate()
        await asyncio.wait_for(sandbox.wait(), 10)


def make_decision(i: int, tag: str) -> DispatchDecision:
    data = dict(EXAMPLE)
    now = datetime.now(UTC)
    data.update(
        decision_id=f"dec-{tag}-{i}",
        event_id=f"{tag}-{i}",
        case_id=f"HUE-{tag}-{i:06d}",
        assignee=OFFICER,
        escalation=[{"level": 0, "role": "officer", "recipients": [OFFICER], "timeout_s": 3600}],
        informed=[],
        citizen_reply="none",
        summary=f"bench {tag} {i}",
        received_at=now.isoformat(),
        decided_at=now.isoformat(),
    )
    return DispatchDecision.model_validate(data)


async def sandbox_count(client: httpx.AsyncClient) -> int:
    return int((await client.get("/sandbox/stats")).json()["messages"])


async def wait_for_count(client: httpx.AsyncClient, target: int, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await sandbox_count(client) >= target:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise TimeoutError(f"sandbox saw {await sandbox_count(client)} of {target} messages")


async def run(backlog: int, rate: float, duration_s: float) -> dict[str, Any]:
    sandbox, base = await start_sandbox()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    settings = NotifierSettings(
        topic_namespace=namespace,
        mongodb_database=f"bench_{namespace}",
        consumer_group=f"bench-{namespace}",
        twilio_base_url=f"{base}/twilio",
        rate_limits={"twilio": RateLimit(rate=1_000_000, burst=1_000_000)},
        log_json=False,
    )
    mongo = make_client(settings.mongodb_uri.get_secret_value(), "notifier-bench")
    http = build_http(settings)
    producer = make_producer(settings.kafka_bootstrap_servers, "notifier-bench")
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0]}
    try:
        await producer.start()
        await ensure_topics(settings.kafka_bootstrap_servers, settings.topics)
        async with httpx.AsyncClient(base_url=base) as client:
            notifier = Notifier.build(
                settings,
                http=http,
                publisher=Publisher(producer, "notifier"),
                db=mongo[settings.mongodb_database],
                clock=SystemClock(),
            )
            await notifier.repo.ensure_indexes()

            # 1. Throughput: a backlog published first, then consumed as fast as possible.
            for i in range(backlog):
                d = make_decision(i, "tp")
                await producer.send(
                    settings.topics.dispatched, encode(d), key=(d.case_id or "").encode()
                )
            await producer.flush()
            workers = notifier.workers()
            for w in workers:
                await w.start()
            tasks = [asyncio.create_task(w.run()) for w in workers]
            started = time.monotonic()
            others = {**stack_pids(ROOT), "sandbox": sandbox.pid}
            first = await wait_for_count(client, 1, 60)
            cpu_first = time.process_time()
            others_first = cpu_seconds(others)
            last = await wait_for_count(client, backlog, 600)
            cpu_ms = (time.process_time() - cpu_first) * 1000 / backlog
            others_last = cpu_seconds(others)
            results["backlog"] = backlog
            results["throughput_alerts_per_s"] = round(backlog / (last - first), 1)
            results["throughput_including_group_join_per_s"] = round(backlog / (last - started), 1)
            # CPU of this process (event loop + motor's threads) per alert: what one core could
            # sustain if the notifier had it to itself, independent of the machine's load.
            results["notifier_cpu_ms_per_alert"] = round(cpu_ms, 2)
            results["one_core_capacity_alerts_per_s"] = round(1000 / cpu_ms, 0)
            # Everything else an alert costs on this machine: the provider (sandbox), the
            # database and the broker. Their sum with the notifier's bounds what the machine's
            # cores can sustain, however fast the notifier gets.
            per_alert = {
                name: round((others_last[name] - others_first[name]) * 1000 / backlog, 2)
                for name in others_last
                if name in others_first
            }
            results["other_cpu_ms_per_alert"] = per_alert
            total_ms = cpu_ms + sum(per_alert.values())
            results["all_processes_cpu_ms_per_alert"] = round(total_ms, 2)
            results["machine_capacity_alerts_per_s"] = round(
                (os.cpu_count() or 1) * 1000 / total_ms, 0
            )
            print(json.dumps(results), flush=True)
            await asyncio.sleep(1)  # let stragglers (redelivered retries) land before the reset

            # 2. Latency at a steady rate: publish time → provider accepted (sandbox clock).
            await client.delete("/sandbox/messages")
            count = int(rate * duration_s)
            published: dict[str, float] = {}
            t0 = time.time()
            for i in range(count):
                d = make_decision(i, "lat")
                target = t0 + i / rate
                delay = target - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                published[d.case_id or ""] = time.time()
                await producer.send(
                    settings.topics.dispatched, encode(d), key=(d.case_id or "").encode()
                )
            await wait_for_count(client, count, 120)
            messages = (await client.get("/sandbox/messages")).json()["messages"]
            latencies = []
            for m in messages:
                case = m["text"].split("Vụ việc ")[1].split(":")[0]
                if case not in published:
                    continue  # a straggler from the throughput phase
                accepted = datetime.fromisoformat(m["at"]).timestamp()
                latencies.append((accepted - published[case]) * 1000)
            latencies.sort()
            results["load_avg_at_end"] = os.getloadavg()[0]
            results["rate_per_s"] = rate
            results["latency_samples"] = len(latencies)
            results["latency_p50_ms"] = round(statistics.median(latencies), 1)
            results["latency_p99_ms"] = round(latencies[int(len(latencies) * 0.99) - 1], 1)
            results["latency_max_ms"] = round(latencies[-1], 1)
            for w in workers:
                w.runner.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            for w in workers:
                await w.stop()
    finally:
        await producer.stop()
        await http.aclose()
        with contextlib.suppress(Exception):
            await mongo.drop_database(f"bench_{namespace}")
        mongo.close()
        await stop_sandbox(sandbox)
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        with contextlib.suppress(Exception):
            await admin.delete_topics(settings.topics.all())
        await admin.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    configure_logging("notifier-bench", "WARNING", json_lines=False)
    results = asyncio.run(run(args.backlog, args.rate, args.duration))
    print(json.dumps(results, indent=2))
    print(
        f"CPU per alert: notifier {results['notifier_cpu_ms_per_alert']} ms, "
        + ", ".join(f"{k} {v} ms" for k, v in results["other_cpu_ms_per_alert"].items())
        + f"; all {results['all_processes_cpu_ms_per_alert']} ms → at most "
        f"{results['machine_capacity_alerts_per_s']:g} alerts/s on {results['cpus']} cores"
    )
    print(
        f"sustained: {results['throughput_alerts_per_s']} alerts/s (target ≥ 1000); "
        f"p99 dispatched→sent at {args.rate:g}/s: {results['latency_p99_ms']} ms (target ≤ 100)"
    )


if __name__ == "__main__":
    main()
