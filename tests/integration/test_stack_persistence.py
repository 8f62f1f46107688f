"""A topic's messages and a collection's documents survive `stack down` + `stack up`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hotline.contracts.topics import TopicNames
from hotline.kafka import ensure_topics
from hotline.mongo import make_client
from hotline.testing import skip_unless_required
from hotline.testing.kafka import produce, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _stack(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=240
    )


async def test_data_survives_stack_restart(
    kafka_bootstrap: str, mongo_uri: str, stack_script: Path, repo_root: Path
) -> None:
    status = _stack(stack_script, "status")
    if "kafka       running" not in status.stdout or "ferretdb    running" not in status.stdout:
        skip_unless_required(
            "the stack was not started by deploy/local/stack.py (external services)"
        )

    names = TopicNames.for_namespace(f"persist{uuid.uuid4().hex[:6]}")
    await ensure_topics(kafka_bootstrap, names)
    marker = uuid.uuid4().hex.encode()
    await produce(kafka_bootstrap, names.inbound, [marker])
    client = make_client(mongo_uri, "test-persist")
    db_name = f"persist_{uuid.uuid4().hex[:8]}"
    await client[db_name]["cases"].insert_one({"_id": "HUE-1", "marker": marker.decode()})
    client.close()

    # `up` starts Prometheus too once Debian's package is there, which `make k8s-check`
    # installs on a fresh machine in the middle of the suite: one the stack did not run before
    # is stopped again, so the run leaves no process its `with-stack` did not start.
    prometheus_before = "prometheus  running" in status.stdout
    down = _stack(stack_script, "down")
    assert down.returncode == 0, down.stderr
    assert "kafka" in down.stdout and "ferretdb" in down.stdout
    try:
        up = _stack(stack_script, "up")
        assert up.returncode == 0, up.stdout + up.stderr
    finally:
        if not prometheus_before:
            _stack(stack_script, "stop", "prometheus")

    records = await read_topic(kafka_bootstrap, names.inbound, expect=1, idle_s=0.2)
    assert [r.value for r in records] == [marker]
    client = make_client(mongo_uri, "test-persist")
    try:
        doc = await client[db_name]["cases"].find_one({"_id": "HUE-1"})
        assert doc is not None and doc["marker"] == marker.decode()
        await client.drop_database(db_name)
    finally:
        client.close()

    # The FerretDB the script started runs with the garbage-collector target it documents.
    state = Path(os.environ.get("HOTLINE_STATE_DIR", repo_root / ".local"))
    pid = (state / "run" / "ferretdb.pid").read_text().split()[0]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"GOGC=" + os.environ.get("HOTLINE_FERRETDB_GOGC", "400").encode() in environ
