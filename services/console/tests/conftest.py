"""Fixtures of the console's tests.

* `pipeline` (session): the provider sandbox, ingest, classifier, dispatcher, notifier and the
  console as real processes on free ports (`hotline_cli.pipeline`, as the end-to-end tests),
  with their own topic namespace and database, for the browser tests.
* `chromium` (session): Debian's Chromium at /usr/bin/chromium, installed with apt-get when it
  is missing (a fresh CI machine); Playwright's own browser downloads are never used.
* `browser_context`: a fresh headless Chromium profile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotline_cli.pipeline import SERVICES
from hotline_cli.pipeline import Pipeline as CliPipeline
from hotline_dispatcher.config import write_routing_variant

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


ESCALATION_TIMEOUT_S = 6
"""P1's acknowledgement timeout in the console tests' routing: long enough for a test to sign in
and acknowledge between two escalation levels, short enough to watch an escalation stop."""


class Pipeline(CliPipeline):
    """The whole pipeline (sandbox, four services, console) the browser tests drive."""

    @property
    def console(self) -> str:
        return self.url("console")

    @property
    def kafka(self) -> str:
        return self.kafka_bootstrap

    def alive(self) -> dict[str, int | None]:
        """Each process's exit code (None while it runs)."""
        return {n: p.popen.poll() if p.popen else -1 for n, p in self.procs.items()}

    def ops(self, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
        """A call to the dispatcher's ops API (to check what the console did)."""
        return httpx.request(
            method,
            f"{self.url('dispatcher')}/api/v1{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            **kw,
        )


@pytest.fixture(scope="session")
def pipeline(kafka_bootstrap: str, mongo_uri: str) -> Iterator[Pipeline]:
    """Sandbox → ingest → classifier → dispatcher → notifier, and the console, as processes
    with their own topic namespace and database (the same launcher as the end-to-end tests).

    P1 escalates every ESCALATION_TIMEOUT_S seconds, so a test sees an escalation run and an
    acknowledgement from the case page stop it; quiet hours hold no priority."""
    pipe = Pipeline(
        kafka_bootstrap=kafka_bootstrap,
        mongodb_uri=mongo_uri,
        namespace=f"c{uuid.uuid4().hex[:10]}",
        log_dir=REPO / ".local" / "logs" / "pipelines",
        services=(*SERVICES, "console"),
        extra_env={"HOTLINE_ENV": "test", "LOG_LEVEL": "WARNING"},
    )
    routing = write_routing_variant(
        pipe.log_dir / "routing.yaml", timeouts_s={"P1": ESCALATION_TIMEOUT_S}
    )
    pipe.service_env = {
        "dispatcher": {"DISPATCHER_ROUTING_FILE": str(routing)},
        "notifier": {"NOTIFIER_QUIET_HOURS_PRIORITIES": "[]"},
        "console": {"CONSOLE_LIVE_COALESCE_MS": "50"},
    }
    try:
        pipe.start(timeout_s=120)
        yield pipe
    finally:
        pipe.stop()
        pipe.delete_data()
        # The services' logs stay beside the screenshots for a failed run to be read.
        (ARTIFACTS / "logs").mkdir(parents=True, exist_ok=True)
        for proc in pipe.procs.values():
            with contextlib.suppress(OSError):
                shutil.copy(proc.log_path, ARTIFACTS / "logs" / proc.log_path.name)


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
