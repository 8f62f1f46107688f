"""Fixtures of the console's tests.

* `pipeline` (session): ingest, classifier, dispatcher and the console as real processes on free
  ports, with their own topic namespace and database, for the browser tests.
* `chromium` (session): Debian's Chromium at /usr/bin/chromium, installed with apt-get when it
  is missing (a fresh CI machine); Playwright's own browser downloads are never used.
* `browser_page`: a Playwright page in a fresh headless Chromium profile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "console"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@dataclass
class Pipeline:
    """The four services of the browser tests, with what the tests need to reach them."""

    namespace: str
    database: str
    kafka: str
    mongo_uri: str
    procs: dict[str, Proc] = field(default_factory=dict)

    def alive(self) -> dict[str, int | None]:
        """Each process's exit code (None while it runs)."""
        return {name: proc.process.poll() for name, proc in self.procs.items()}

    def url(self, name: str) -> str:
        return self.procs[name].url

    @property
    def console(self) -> str:
        return self.url("console")

    def ops(self, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
        """A call to the dispatcher's ops API (to check what the console did)."""
        return httpx.request(
            method,
            f"{self.url('dispatcher')}/api/v1{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            **kw,
        )


def _start(name: str, module: str, env: dict[str, str], port: int, logs: Path) -> Proc:
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=logs,  # faust writes its data directory into the working directory
        )
    return Proc(name, f"http://127.0.0.1:{port}", process, log_path)


def _wait_ready(proc: Proc, path: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            pytest.fail(f"{proc.name} exited with {proc.process.returncode}:\n{proc.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{proc.url}{path}", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"{proc.name} was not ready within the deadline:\n{proc.log()}")


def _stop(proc: Proc) -> None:
    if proc.process.poll() is None:
        proc.process.send_signal(signal.SIGTERM)
        try:
            proc.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.process.kill()
            proc.process.wait()


@pytest.fixture(scope="session")
def pipeline(kafka_bootstrap: str, mongo_uri: str) -> Iterator[Pipeline]:
    """Ingest → classifier → dispatcher → console as processes (the notifier is not needed:
    the tests check the dispatcher's state and the published case events)."""
    suffix = uuid.uuid4().hex[:10]
    pipe = Pipeline(f"c{suffix}", f"console_{suffix}", kafka_bootstrap, mongo_uri)
    logs = Path(tempfile.mkdtemp(prefix="console-pipeline-"))
    ports = {name: free_port() for name in ("ingest", "classifier", "dispatcher", "console")}
    common = {
        "HOTLINE_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URI": mongo_uri,
        "MONGODB_DATABASE": pipe.database,
        "HOTLINE_TOPIC_NAMESPACE": pipe.namespace,
        "LOG_LEVEL": "WARNING",
    }
    specs = [
        (
            "dispatcher",
            "hotline_dispatcher.main",
            {
                "DISPATCHER_PORT": str(ports["dispatcher"]),
                "DISPATCHER_CONSUMER_GROUP": f"dispatcher-{pipe.namespace}",
            },
        ),
        ("ingest", "hotline_ingest.main", {"INGEST_PORT": str(ports["ingest"])}),
        ("classifier", "hotline_classifier.main", {"CLASSIFIER_PORT": str(ports["classifier"])}),
        (
            "console",
            "hotline_console.main",
            {
                "CONSOLE_PORT": str(ports["console"]),
                "CONSOLE_DISPATCHER_URL": f"http://127.0.0.1:{ports['dispatcher']}",
                "CONSOLE_INGEST_URL": f"http://127.0.0.1:{ports['ingest']}",
                "CONSOLE_LIVE_COALESCE_MS": "50",
            },
        ),
    ]
    try:
        for name, module, env in specs:
            pipe.procs[name] = _start(name, module, {**common, **env}, ports[name], logs)
        deadline = time.monotonic() + 90
        for name in ("dispatcher", "ingest", "classifier", "console"):
            _wait_ready(pipe.procs[name], "/readyz", deadline)
        yield pipe
    finally:
        for proc in pipe.procs.values():
            _stop(proc)
        _cleanup(pipe)
        # The services' logs stay beside the screenshots for a failed run to be read.
        (ARTIFACTS / "logs").mkdir(parents=True, exist_ok=True)
        for proc in pipe.procs.values():
            with contextlib.suppress(OSError):
                shutil.copy(proc.log_path, ARTIFACTS / "logs" / proc.log_path.name)
        shutil.rmtree(logs, ignore_errors=True)


def _cleanup(pipe: Pipeline) -> None:
    """Drop the test database and topics (best effort)."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    from hotline.contracts.topics import TopicNames
    from hotline.mongo import make_client

    async def clean() -> None:
        client = make_client(pipe.mongo_uri, "console-tests")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.drop_database(pipe.database), 10)
        client.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=pipe.kafka)
        await admin.start()
        try:
            with contextlib.suppress(Exception):
                await admin.delete_topics(TopicNames.for_namespace(pipe.namespace).all())
        finally:
            await admin.close()

    with contextlib.suppress(Exception):
        asyncio.run(clean())


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed on first use (about a minute); never a downloaded build."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.fail(
            f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get): "
            "run `apt-get install -y chromium` (Debian's package), then the tests again"
        )
    print("\n[console tests] installing Debian's chromium with apt-get (a minute)…", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [[apt, "update", "-qq"], [apt, "install", "-y", "-qq", "chromium"]]
    for step in steps:
        result = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            pytest.fail(
                f"`{' '.join(step)}` failed ({result.returncode}); install Debian's chromium by "
                f"hand:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
    if not CHROMIUM.exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")
    print("[console tests] chromium installed", flush=True)
    return CHROMIUM


@pytest.fixture
def browser_context(chromium: Path) -> Iterator[Any]:
    """A fresh headless Chromium profile (Playwright's sync API, the system browser)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale="vi-VN",
        )
        # Generous: CI shares two cores with the other suites.
        context.set_default_timeout(20_000)
        context.set_default_navigation_timeout(30_000)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
