"""Clients for end-to-end and fault tests of a running pipeline (every service as a process).

* `ProviderClient` posts signed deliveries to ingest the way a provider does: a 5xx, a 429, a
  timeout or a refused connection is retried later with the same bytes (so the same provider
  message id) until ingest answers 2xx or a final 4xx; every answer and its latency is kept.
* `SandboxClient` reads what the provider sandbox received; `OpsClient` calls the dispatcher's
  ops API with a bearer token.
* `group_lags` / `wait_for_zero_lag`: committed offsets of consumer groups against the end of
  their partitions (a partition whose group is behind is stuck or still working).
* `metric_value`: a sample from a Prometheus text exposition, summed over unnamed labels.

Nothing here imports a service package, so the shared library stays below the services; a
signed delivery is anything with `method`, `path`, `body` and `headers` (as
`hotline_ingest.samples.Delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

TOKENS = {
    "viewer": "dev-viewer-token",
    "call_taker": "dev-call-taker-token",
    "officer": "dev-officer-token",
    "staff": "dev-staff-token",
    "director": "dev-director-token",
    "admin": "dev-admin-token",
}


class SignedDelivery(Protocol):
    """One provider request (hotline_ingest.samples.Delivery has this shape)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, str]: ...


@dataclass
class Answer:
    """What ingest finally answered a delivery, after the provider's retries."""

    status: int  # 0 when ingest was never reached
    body: dict[str, Any] | str | None
    statuses: list[int] = field(default_factory=list)  # every attempt, in order
    first_latency_s: float = 0.0  # the first attempt's round trip
    total_s: float = 0.0  # from the first attempt to the final answer

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retried(self) -> int:
        return len(self.statuses) - 1

    @property
    def published(self) -> bool:
        """2xx and the item is in the pipeline (published now or by an earlier attempt), not
        acknowledged-and-dropped by flood control (`accepted` and `duplicates` both 0)."""
        if not self.ok:
            return False
        if isinstance(self.body, dict) and "accepted" in self.body:
            return int(self.body.get("accepted", 0)) + int(self.body.get("duplicates", 0)) > 0
        return True  # Twilio's TwiML answer, a 202 receipt: no drop signal to read


class ProviderClient:
    """Posts deliveries to ingest and retries like a provider (same bytes, backoff)."""

    def __init__(
        self,
        base_url: str,
        *,
        retry_for_s: float = 180.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 4.0,
        timeout_s: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_for_s = retry_for_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.http = httpx.AsyncClient(
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> ProviderClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def once(self, delivery: SignedDelivery) -> tuple[int, dict[str, Any] | str | None]:
        """One attempt, no retry: (status, body); status 0 when ingest was not reached."""
        try:
            resp = await self.http.request(
                delivery.method,
                self.base_url + delivery.path,
                content=delivery.body,
                headers=delivery.headers,
            )
        except httpx.HTTPError:
            return 0, None
        body: dict[str, Any] | str | None
        try:
            parsed = resp.json()
            body = parsed if isinstance(parsed, dict) else resp.text
        except ValueError:
            body = resp.text
        return resp.status_code, body

    async def post(self, delivery: SignedDelivery, *, retry: bool = True) -> Answer:
        """Deliver until a 2xx or a final 4xx (or `retry_for_s` runs out)."""
        answer = Answer(status=0, body=None)
        started = time.monotonic()
        backoff = self.backoff_s
        while True:
            t0 = time.monotonic()
            status, body = await self.once(delivery)
            if not answer.statuses:
                answer.first_latency_s = time.monotonic() - t0
            answer.statuses.append(status)
            answer.status, answer.body = status, body
            final = 200 <= status < 300 or (400 <= status < 500 and status != 429)
            if final or not retry or time.monotonic() - started > self.retry_for_s:
                answer.total_s = time.monotonic() - started
                return answer
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)


class SandboxClient:
    """What the provider sandbox received (every outbound alert and citizen reply)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(timeout=70.0)

    async def close(self) -> None:
        await self.http.aclose()

    async def messages(self, **filters: str | int) -> list[dict[str, Any]]:
        """`to`, `channel`, `provider`, `contains`, `since_id` as the sandbox's API takes them."""
        resp = await self.http.get(f"{self.base_url}/sandbox/messages", params=filters)
        resp.raise_for_status()
        return list(resp.json()["messages"])

    async def wait(
        self, count: int = 1, timeout_s: float = 30.0, **filters: str | int
    ) -> list[dict[str, Any]]:
        """Long-poll until `count` messages match (returns what matched by then)."""
        deadline = time.monotonic() + timeout_s
        found: list[dict[str, Any]] = []
        while True:
            left = deadline - time.monotonic()
            resp = await self.http.get(
                f"{self.base_url}/sandbox/messages/wait",
                params={"count": count, "timeout_s": max(0.1, min(left, 30.0)), **filters},
            )
            resp.raise_for_status()
            found = list(resp.json()["messages"])
            if len(found) >= count or time.monotonic() >= deadline:
                return found

    async def stats(self) -> dict[str, Any]:
        resp = await self.http.get(f"{self.base_url}/sandbox/stats")
        resp.raise_for_status()
        return dict(resp.json())


class OpsClient:
    """The dispatcher's ops API (`/api/v1`) as one of the development identities."""

    def __init__(self, base_url: str, role: str = "director") -> None:
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.http = httpx.AsyncClient(
            timeout=15.0, headers={"Authorization": f"Bearer {TOKENS[role]}"}
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, **params: str | int) -> Any:
        resp = await self.http.get(self.base_url + path, params=params)
        resp.raise_for_status()
        return resp.json()

    async def post(self, path: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        return await self.http.post(self.base_url + path, json=dict(body or {}))

    async def case(self, case_id: str) -> dict[str, Any]:
        return dict(await self.get(f"/cases/{case_id}"))


def zalo_id() -> str:
    """A fresh Zalo user id (digits, as Zalo issues them): one new citizen per call."""
    return "88" + "".join(secrets.choice("0123456789") for _ in range(14))


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.3,
) -> T | None:
    """The first truthy value `probe` returns within `timeout_s` (else the last value)."""
    deadline = time.monotonic() + timeout_s
    value: T | None = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            value = await probe()
            if value:
                return value
        await asyncio.sleep(interval_s)
    return value


# --------------------------------------------------------------------------- Kafka


async def group_lags(
    bootstrap: str, groups: Mapping[str, Sequence[str]], timeout_s: float = 20.0
) -> dict[str, dict[str, int]]:
    """For each group, `topic[partition]` -> end offset minus committed offset.

    Every partition of the group's topics is listed, committed or not: a partition that holds
    records the group never committed counts its whole length, so nothing hides as "no data".
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    out: dict[str, dict[str, int]] = {}
    async with asyncio.timeout(timeout_s):
        await admin.start()
        await consumer.start()
        try:
            metadata = await consumer._client.fetch_all_metadata()
            for group, topics in groups.items():
                tps = [
                    TopicPartition(topic, p)
                    for topic in topics
                    for p in sorted(metadata.partitions_for_topic(topic) or [])
                ]
                ends = await consumer.end_offsets(tps) if tps else {}
                committed = await admin.list_consumer_group_offsets(group)
                lags: dict[str, int] = {}
                for tp in tps:
                    meta = committed.get(tp)
                    done = meta.offset if meta is not None and meta.offset >= 0 else 0
                    lags[f"{tp.topic}[{tp.partition}]"] = ends[tp] - done
                out[group] = lags
        finally:
            await consumer.stop()
            await admin.close()
    return out


async def wait_for_zero_lag(
    bootstrap: str, groups: Mapping[str, Sequence[str]], timeout_s: float = 60.0
) -> dict[str, dict[str, int]]:
    """Poll `group_lags` until every partition of every group is at 0 (returns the last)."""
    deadline = time.monotonic() + timeout_s
    lags: dict[str, dict[str, int]] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the broker may still be coming back
            lags = await group_lags(bootstrap, groups)
            if lags and all(v == 0 for g in lags.values() for v in g.values()):
                return lags
        await asyncio.sleep(1.0)
    return lags


async def topic_size(bootstrap: str, topic: str) -> int:
    """Records ever written to `topic` (sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in metadata.partitions_for_topic(topic) or []]
        ends = await consumer.end_offsets(tps) if tps else {}
        return sum(ends.values())
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- metrics


def metric_value(exposition: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0.0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name != name:
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                total += float(sample.value)
    return total


async def scrape(base_url: str) -> str:
    async with httpx.AsyncClient(timeout=10.0) as http:
        resp = await http.get(base_url.rstrip("/") + "/metrics")
        resp.raise_for_status()
        return resp.text
