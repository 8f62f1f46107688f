"""`hotline status`: every component, whether it is ready, and each consumer group's lag."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from hotline.mongo import make_client, mongo_ready
from hotline_cli.settings import CliSettings


@dataclass
class ComponentStatus:
    name: str
    address: str
    state: str
    detail: str = ""


@dataclass
class GroupLag:
    group: str
    topic: str
    lag: int
    partitions: int


async def service_status(client: httpx.AsyncClient, name: str, url: str) -> ComponentStatus:
    try:
        resp = await client.get(f"{url}/readyz", timeout=2.0)
    except httpx.HTTPError as exc:
        return ComponentStatus(name, url, "down", type(exc).__name__)
    if resp.status_code == 200:
        return ComponentStatus(name, url, "ready")
    try:
        checks = resp.json().get("checks", {})
    except ValueError:
        checks = {}
    failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
    return ComponentStatus(name, url, "not ready", failing or f"HTTP {resp.status_code}")


async def kafka_status(bootstrap: str, topics: list[str]) -> tuple[ComponentStatus, list[GroupLag]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
    except Exception as exc:
        return ComponentStatus("kafka", bootstrap, "down", type(exc).__name__), []
    try:
        cluster = await admin.describe_cluster()
        brokers = len(cluster.get("brokers", []))
        lags = await _group_lags(admin, bootstrap, set(topics))
        return ComponentStatus("kafka", bootstrap, "ready", f"{brokers} broker(s)"), lags
    finally:
        await admin.close()


async def _group_lags(
    admin: AIOKafkaAdminClient, bootstrap: str, topics: set[str]
) -> list[GroupLag]:
    """Lag of every consumer group reading this deployment's topics."""
    groups = [g[0] for g in await admin.list_consumer_groups()]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    out: list[GroupLag] = []
    try:
        for group in sorted(groups):
            offsets = await admin.list_consumer_group_offsets(group)
            by_topic: dict[str, dict[TopicPartition, int]] = {}
            for tp, meta in offsets.items():
                if tp.topic not in topics:
                    continue
                by_topic.setdefault(tp.topic, {})[tp] = meta.offset
            for topic, committed in sorted(by_topic.items()):
                ends = await consumer.end_offsets(list(committed))
                lag = sum(max(0, ends[tp] - off) for tp, off in committed.items() if off >= 0)
                out.append(GroupLag(group, topic, lag, len(committed)))
    finally:
        await consumer.stop()
    return out


async def mongo_status(uri: str) -> ComponentStatus:
    client = make_client(uri, "hotline-cli", serverSelectionTimeoutMS=2000)
    try:
        await mongo_ready(client, timeout_s=3)
        info = await client.admin.command("buildInfo")
        flavour = (
            "FerretDB " + str(info["ferretdbVersion"])
            if "ferretdbVersion" in info
            else "MongoDB " + str(info.get("version", "?"))
        )
        return ComponentStatus("mongodb", uri.split("@")[-1], "ready", flavour)
    except Exception as exc:
        return ComponentStatus("mongodb", uri.split("@")[-1], "down", type(exc).__name__)
    finally:
        client.close()


async def collect(settings: CliSettings) -> tuple[list[ComponentStatus], list[GroupLag]]:
    async with httpx.AsyncClient() as client:
        kafka_task = asyncio.create_task(
            kafka_status(settings.kafka_bootstrap_servers, settings.topics.all())
        )
        mongo_task = asyncio.create_task(mongo_status(settings.mongodb_uri.get_secret_value()))
        services = await asyncio.gather(
            *(service_status(client, n, u) for n, u in settings.service_urls().items())
        )
        kafka, lags = await kafka_task
        mongo = await mongo_task
    return [kafka, mongo, *services], lags


def render(components: list[ComponentStatus], lags: list[GroupLag]) -> str:
    lines = [f"{'component':<12} {'state':<10} {'address':<34} detail"]
    for c in components:
        lines.append(f"{c.name:<12} {c.state:<10} {c.address:<34} {c.detail}")
    if lags:
        lines.append("")
        lines.append(f"{'consumer group':<36} {'topic':<30} {'lag':>8}")
        for g in lags:
            lines.append(f"{g.group:<36} {g.topic:<30} {g.lag:>8}")
    return "\n".join(lines)


def run(settings: CliSettings) -> int:
    components, lags = asyncio.run(collect(settings))
    print(render(components, lags))
    return 0 if all(c.state == "ready" for c in components) else 3
