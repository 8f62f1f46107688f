"""Launch the whole pipeline as separate processes: for end-to-end tests and the benchmark.

`Pipeline` starts the provider sandbox and the four services (optionally the console) as
subprocesses on free ports, isolated by a topic namespace and a database name, so several
pipelines (a test's, a benchmark's, `make run`'s) share one broker and one database without
seeing each other. It can kill -9 and restart one service, which the fault tests use.

For the benchmark (`hotline bench`): `replicas={"notifier": 2}` starts extra processes of a
service (`notifier-2`, same consumer group, own port and working directory), `partitions=N`
creates the namespace's topics with N partitions before the services start (they keep topics
that exist), and `usage()` reads each process's CPU time and peak memory from /proc.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICES = ("sandbox", "ingest", "classifier", "dispatcher", "notifier")
MODULES = {
    "sandbox": "hotline_sandbox.main",
    "ingest": "hotline_ingest.main",
    "classifier": "hotline_classifier.main",
    "dispatcher": "hotline_dispatcher.main",
    "notifier": "hotline_notifier.main",
    "console": "hotline_console.main",
}
PORT_ENV = {
    "sandbox": "SANDBOX_PORT",
    "ingest": "INGEST_PORT",
    "classifier": "CLASSIFIER_PORT",
    "dispatcher": "DISPATCHER_PORT",
    "notifier": "NOTIFIER_PORT",
    "console": "CONSOLE_PORT",
}
NOTIFIER_PROVIDER_PATHS = {
    "NOTIFIER_TWILIO_BASE_URL": "/twilio",
    "NOTIFIER_ESMS_BASE_URL": "/esms",
    "NOTIFIER_ZALO_BASE_URL": "/zalo",
    "NOTIFIER_ZALO_OAUTH_BASE_URL": "/zalo-oauth",
    "NOTIFIER_ZALO_BUSINESS_BASE_URL": "/zalo-business",
    "NOTIFIER_VIBER_BASE_URL": "/viber",
    "NOTIFIER_WHATSAPP_BASE_URL": "/graph",
    "NOTIFIER_TELEGRAM_BASE_URL": "/telegram",
    "NOTIFIER_WEBHOOK_BASE_URL": "/webhook",
}


_SINGLE = {"min.insync.replicas": "1"}  # one local broker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Usage:
    """CPU time so far and peak resident memory of one process (Linux /proc)."""

    cpu_s: float
    peak_rss_kib: int
    rss_kib: int


def process_usage(pid: int) -> Usage | None:
    """User + system CPU seconds (/proc/<pid>/stat) and VmHWM / VmRSS (/proc/<pid>/status);
    None when the process is gone or not readable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    memory = {"VmHWM": 0, "VmRSS": 0}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in memory:
            memory[name] = int(value.split()[0])
    return Usage(cpu, memory["VmHWM"], memory["VmRSS"])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Process:
    name: str
    port: int
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    service: str = ""  # the service it runs: `name` itself, or "notifier" for "notifier-2"

    def __post_init__(self) -> None:
        self.service = self.service or self.name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready_url(self) -> str:
        return f"{self.url}/healthz" if self.service == "sandbox" else f"{self.url}/readyz"


@dataclass
class Pipeline:
    """The four services plus the provider sandbox, isolated by namespace and database."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    namespace: str = field(default_factory=lambda: f"p{uuid.uuid4().hex[:8]}")
    database: str | None = None
    log_dir: Path = field(default_factory=lambda: Path(".local/logs/pipelines"))
    services: tuple[str, ...] = SERVICES
    extra_env: Mapping[str, str] = field(default_factory=dict)
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    replicas: Mapping[str, int] = field(default_factory=dict)
    partitions: int | None = None
    procs: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.database = self.database or f"hotline_{self.namespace}"
        self.log_dir = (self.log_dir / self.namespace).resolve()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        smtp = free_port()
        for name in self.services:
            self.procs[name] = Process(name, free_port(), self.log_dir / f"{name}.log")
            for i in range(2, self.replicas.get(name, 1) + 1):
                extra = f"{name}-{i}"
                self.procs[extra] = Process(
                    extra, free_port(), self.log_dir / f"{extra}.log", service=name
                )
        self._smtp_port = smtp

    # ------------------------------------------------------------------ addresses

    def url(self, name: str) -> str:
        return self.procs[name].url

    @property
    def env(self) -> dict[str, str]:
        """The environment every process gets (connections, namespace, ports, providers)."""
        env = {
            **os.environ,
            "HOTLINE_ENV": "development",
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "MONGODB_URI": self.mongodb_uri,
            "MONGODB_DATABASE": self.database or "",
            "HOTLINE_TOPIC_NAMESPACE": self.namespace,
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
            "SANDBOX_SMTP_PORT": str(self._smtp_port),
            "NOTIFIER_SMTP_PORT": str(self._smtp_port),
        }
        for name, proc in self.procs.items():
            if proc.service == name:  # a replica gets its own port in _spawn
                env[PORT_ENV[name]] = str(proc.port)
        if "sandbox" in self.procs:
            base = self.procs["sandbox"].url
            for var, path in NOTIFIER_PROVIDER_PATHS.items():
                env[var] = base + path
        if "notifier" in self.procs:
            env["NOTIFIER_PUBLIC_BASE_URL"] = self.procs["notifier"].url
        if "console" in self.procs:
            env["CONSOLE_DISPATCHER_URL"] = self.procs["dispatcher"].url
            env["CONSOLE_INGEST_URL"] = self.procs["ingest"].url
        # The dispatcher's and the notifier's consumer groups are not namespaced by the services
        # (the classifier's faust app id is): two pipelines on one broker would share a group,
        # so one pipeline's start, stop or kill -9 would stall the other's partitions.
        env["DISPATCHER_CONSUMER_GROUP"] = f"dispatcher-{self.namespace}"
        env["NOTIFIER_CONSUMER_GROUP"] = f"notifier-{self.namespace}"
        env.update(self.extra_env)
        return env

    def consumer_groups(self) -> dict[str, tuple[str, ...]]:
        """Every consumer group of this pipeline's services -> the (namespaced) topics it reads.

        For lag checks: a group whose committed offsets equal the end offsets has nothing stuck.
        """
        from hotline.contracts.topics import TopicNames

        t = TopicNames.for_namespace(self.namespace)
        env = self.env
        dispatcher = env["DISPATCHER_CONSUMER_GROUP"]
        notifier = env["NOTIFIER_CONSUMER_GROUP"]
        classifier = env.get("CLASSIFIER_GROUP_ID", "hotline-classifier") + f"-{self.namespace}"
        groups: dict[str, tuple[str, ...]] = {}
        if "classifier" in self.procs:
            groups[classifier] = (t.inbound,)
        if "dispatcher" in self.procs:
            groups[dispatcher] = (t.triaged,)
            groups[f"{dispatcher}-case-events"] = (t.case_events,)
            groups[f"{dispatcher}-deliveries"] = (t.deliveries,)
        if "notifier" in self.procs:
            groups[notifier] = (t.dispatched,)
            groups[f"{notifier}-case-events"] = (t.case_events,)
        return groups

    def cli_env(self) -> dict[str, str]:
        """Variables that point `hotline` (CliSettings) at this pipeline."""
        out = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "MONGODB_URI": self.mongodb_uri,
            "MONGODB_DATABASE": self.database or "",
            "HOTLINE_TOPIC_NAMESPACE": self.namespace,
        }
        for name, proc in self.procs.items():
            if proc.service == name:
                out[f"HOTLINE_CLI_{name.upper()}_URL"] = proc.url
        return out

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout_s: float = 90.0) -> Pipeline:
        if self.partitions is not None:
            self.create_topics(self.partitions)
        for name in self.procs:
            self._spawn(name)
        self.wait_ready(timeout_s=timeout_s)
        return self

    def create_topics(self, partitions: int, timeout_s: float = 30.0) -> None:
        """Create this namespace's topics (the registry's, with their configuration) with
        `partitions` partitions each; topics that exist are left as they are."""
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # safe inside a running loop
            pool.submit(asyncio.run, self._create_topics(partitions, timeout_s)).result(
                timeout_s + 5
            )

    async def _create_topics(self, partitions: int, timeout_s: float) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        from hotline.contracts.topics import ALL_TOPICS, TopicNames
        from hotline.kafka import wait_for_leaders

        names = TopicNames.for_namespace(self.namespace)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka_bootstrap)
        async with asyncio.timeout(timeout_s):
            await admin.start()
            try:
                existing = set(await admin.list_topics())
                wanted = [
                    NewTopic(name, partitions, 1, topic_configs={**spec.config(), **_SINGLE})
                    for name, spec in zip(names.all(), ALL_TOPICS, strict=True)
                    if name not in existing
                ]
                if wanted:
                    await admin.create_topics(wanted)
            finally:
                await admin.close()
        await wait_for_leaders(self.kafka_bootstrap, names.all(), timeout_s=timeout_s)

    def _spawn(self, name: str) -> None:
        proc = self.procs[name]
        env = {**self.env, **self.service_env.get(proc.service, {})}
        cwd = self.log_dir
        if proc.service != name:
            env[PORT_ENV[proc.service]] = str(proc.port)
            # A second faust worker must not share the first one's data directory.
            cwd = self.log_dir / name
            cwd.mkdir(exist_ok=True)
        # faust's app directory stays with this process's logs.
        env["CLASSIFIER_DATA_DIR"] = str(cwd / "faust")
        with open(proc.log_path, "ab") as log:  # the child keeps its own copy of the handle
            proc.popen = subprocess.Popen(  # noqa: S603 - our own modules, fixed argv
                [sys.executable, "-m", MODULES[proc.service]],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
            )

    def wait_ready(self, names: tuple[str, ...] | None = None, timeout_s: float = 90.0) -> None:
        pending = set(names or self.procs)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                proc = self.procs[name]
                assert proc.popen is not None
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{name} exited at start-up:\n{self.log_tail(name)}")
                if _ready(proc.ready_url):
                    pending.discard(name)
            time.sleep(0.2)
        if pending:
            raise RuntimeError(
                "not ready within "
                f"{timeout_s:.0f}s: {', '.join(sorted(pending))}\n"
                + "\n".join(self.log_tail(n) for n in pending)
            )

    def kill(self, name: str) -> None:
        """kill -9: no shutdown hooks, no flush, no commit (a crash)."""
        proc = self.procs[name]
        if proc.popen is not None and proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGKILL)
            proc.popen.wait(timeout=10)

    def restart(self, name: str, timeout_s: float = 90.0) -> None:
        self.kill(name)
        self.procs[name].restarts += 1
        self._spawn(name)
        self.wait_ready((name,), timeout_s=timeout_s)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.popen is not None and proc.popen.poll() is None:
                proc.popen.terminate()
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            if proc.popen is None:
                continue
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()

    def delete_data(self, timeout_s: float = 30.0) -> None:
        """Delete this pipeline's topics (with faust's internal ones) and drop its database.

        Best effort, for test teardown: every pipeline adds dozens of partitions to the shared
        broker, which slows its restarts (a fault test restarts it) and everyone's metadata.
        """
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # safe inside a running loop
            pool.submit(asyncio.run, self._delete_data(timeout_s)).result(timeout_s + 5)

    async def _delete_data(self, timeout_s: float) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        from hotline.mongo import make_client

        with contextlib.suppress(Exception):
            admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka_bootstrap)
            async with asyncio.timeout(timeout_s):
                await admin.start()
                try:
                    ours = [
                        t
                        for t in await admin.list_topics()
                        if t.startswith(f"{self.namespace}.") or f"-{self.namespace}-" in t
                    ]
                    if ours:
                        await admin.delete_topics(ours)
                finally:
                    await admin.close()
        with contextlib.suppress(Exception):
            client = make_client(
                self.mongodb_uri, "hotline-pipeline", serverSelectionTimeoutMS=3000
            )
            try:
                async with asyncio.timeout(timeout_s):
                    await client.drop_database(self.database or "")
            finally:
                client.close()

    def pids(self) -> dict[str, int]:
        return {n: p.popen.pid for n, p in self.procs.items() if p.popen is not None}

    def usage(self) -> dict[str, Usage]:
        """CPU seconds so far and peak memory of every running process, by process name."""
        out: dict[str, Usage] = {}
        for name, pid in self.pids().items():
            usage = process_usage(pid)
            if usage is not None:
                out[name] = usage
        return out

    def database_time(self) -> dict[tuple[str, str, str], tuple[float, float]]:
        """Database calls and seconds so far, by (service, command, collection).

        Read from each service's `hotline_mongo_command_seconds` on /metrics (summed over a
        service's replicas); the benchmark subtracts two readings to see where a step's
        database time went.
        """
        from prometheus_client.parser import text_string_to_metric_families

        out: dict[tuple[str, str, str], tuple[float, float]] = {}
        for proc in self.procs.values():
            if proc.service == "sandbox" or proc.popen is None:
                continue
            try:
                with urllib.request.urlopen(f"{proc.url}/metrics", timeout=2) as resp:  # noqa: S310
                    text = resp.read().decode()
            except (urllib.error.URLError, OSError):
                continue
            for family in text_string_to_metric_families(text):
                if family.name != "hotline_mongo_command_seconds":
                    continue
                for sample in family.samples:
                    labels = sample.labels
                    key = (proc.service, labels["command"], labels["collection"])
                    calls, seconds = out.get(key, (0.0, 0.0))
                    if sample.name.endswith("_count"):
                        calls += sample.value
                    elif sample.name.endswith("_sum"):
                        seconds += sample.value
                    out[key] = (calls, seconds)
        return out

    def instances(self, service: str) -> list[Process]:
        """The processes running `service` (one, or more with `replicas`)."""
        return [p for p in self.procs.values() if p.service == service]

    def describe(self) -> dict[str, Any]:
        """What was started, for a benchmark's record."""
        return {
            "namespace": self.namespace,
            "database": self.database,
            "partitions": self.partitions,
            "processes": {n: p.service for n, p in self.procs.items()},
        }

    def log_tail(self, name: str, lines: int = 40) -> str:
        try:
            text = self.procs[name].log_path.read_text(errors="replace")
        except OSError:
            return f"--- {name}: no log ---"
        return f"--- {name} ({self.procs[name].log_path}) ---\n" + "\n".join(
            text.splitlines()[-lines:]
        )


@contextlib.contextmanager
def running_pipeline(**kwargs: object) -> Iterator[Pipeline]:
    pipeline = Pipeline(**kwargs)  # type: ignore[arg-type]
    try:
        pipeline.start()
        yield pipeline
    finally:
        pipeline.stop()
