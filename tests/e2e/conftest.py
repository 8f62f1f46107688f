"""End-to-end fixtures: one whole pipeline (sandbox + the four services as processes) per module.

A module tunes its pipeline with module-level constants the `pipeline` fixture reads:

* `ESCALATION_TIMEOUTS_S` — `{"P1": 3, ...}`: the dispatcher gets a copy of its routing file
  with these acknowledgement timeouts (as `make run` does for a scenario), so an escalation
  runs in seconds;
* `PIPELINE_ENV` — `{service: {VAR: value}}`: extra environment per service.

Each module's pipeline has its own topic namespace, consumer groups and database; its topics
and database are deleted afterwards, its logs kept under `.local/logs/pipelines/<namespace>`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from hotline.contracts.topics import TopicNames
from hotline.mongo import MotorDatabase, make_client
from hotline.testing.e2e import OpsClient, ProviderClient, SandboxClient
from hotline_cli.pipeline import Pipeline
from hotline_dispatcher.config import write_routing_variant
from hotline_ingest.samples import Samples
from hotline_ingest.settings import IngestSettings

REPO = Path(__file__).resolve().parents[2]
LOG_ROOT = REPO / ".local" / "logs" / "pipelines"

MEASURED = pytest.StashKey[list[tuple[str, str]]]()


@pytest.fixture
def measured(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record what a test counted or measured; the lines are printed at the end of the run
    (pass or fail), under "counted by the end-to-end tests", instead of being captured."""
    lines = request.config.stash.setdefault(MEASURED, [])
    name = request.node.name

    def say(text: str) -> None:
        lines.append((name, text.strip("\n")))

    return say


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(MEASURED, [])
    if not lines:
        return
    terminalreporter.section("counted by the end-to-end tests")
    for name, text in lines:
        terminalreporter.write_line(f"{name}:")
        for line in text.splitlines():
            terminalreporter.write_line(f"  {line}")


@pytest.fixture(scope="module")
def pipeline(
    request: pytest.FixtureRequest, kafka_bootstrap: str, mongo_uri: str
) -> Iterator[Pipeline]:
    """The module's pipeline, started once and stopped (and its data deleted) at the end."""
    # Quiet hours (22:00-06:00 local) hold P3/P4 alerts until morning: the tests must not
    # depend on the time of day they run at, so no priority waits here.
    service_env: dict[str, dict[str, str]] = {"notifier": {"NOTIFIER_QUIET_HOURS_PRIORITIES": "[]"}}
    for name, env in getattr(request.module, "PIPELINE_ENV", {}).items():
        service_env.setdefault(name, {}).update(env)
    pipe = Pipeline(
        kafka_bootstrap=kafka_bootstrap,
        mongodb_uri=mongo_uri,
        log_dir=LOG_ROOT,
        extra_env={"LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")},
        service_env=service_env,
    )
    timeouts = getattr(request.module, "ESCALATION_TIMEOUTS_S", None)
    if timeouts:
        routing = write_routing_variant(pipe.log_dir / "routing.yaml", timeouts_s=timeouts)
        service_env.setdefault("dispatcher", {})["DISPATCHER_ROUTING_FILE"] = str(routing)
        pipe.service_env = service_env
    try:
        pipe.start(timeout_s=120)
        yield pipe
    finally:
        pipe.stop()
        pipe.delete_data()


@pytest.fixture(scope="module")
def topic_names(pipeline: Pipeline) -> TopicNames:
    return TopicNames.for_namespace(pipeline.namespace)


@pytest.fixture(scope="module")
def samples(pipeline: Pipeline) -> Samples:
    """Signed deliveries exactly as each provider sends them (ingest's own dev secrets)."""
    return Samples(IngestSettings(), base_url=pipeline.url("ingest"))


@pytest.fixture
async def provider(pipeline: Pipeline) -> AsyncIterator[ProviderClient]:
    async with ProviderClient(pipeline.url("ingest")) as client:
        yield client


@pytest.fixture
async def sandbox(pipeline: Pipeline) -> AsyncIterator[SandboxClient]:
    client = SandboxClient(pipeline.url("sandbox"))
    yield client
    await client.close()


@pytest.fixture
async def ops(pipeline: Pipeline) -> AsyncIterator[dict[str, OpsClient]]:
    """The ops API as each development identity: `ops["director"].case(...)`."""
    clients = {
        role: OpsClient(pipeline.url("dispatcher"), role)
        for role in ("viewer", "call_taker", "officer", "staff", "director")
    }
    yield clients
    for client in clients.values():
        await client.close()


@pytest.fixture
async def db(pipeline: Pipeline, mongo_uri: str) -> AsyncIterator[MotorDatabase]:
    """The pipeline's own database (read by the tests to count decisions and cases)."""
    client = make_client(mongo_uri, "hotline-e2e-tests", serverSelectionTimeoutMS=10_000)
    yield client[pipeline.database or ""]
    with contextlib.suppress(Exception):
        client.close()
