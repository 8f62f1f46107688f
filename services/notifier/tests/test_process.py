"""The notifier as its own process (`python -m hotline_notifier.main`), as `make run` starts it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys

import httpx
import pytest

from hotline.contracts.events import CaseEvent, encode
from hotline.contracts.topics import TopicNames
from hotline.mongo import MotorDatabase
from hotline.testing.kafka import produce, read_topic
from hotline_sandbox.server import SandboxHandle

from .conftest import decision

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_notifier_process_alerts_and_serves_ack_links(
    sandbox: SandboxHandle,
    topics: TopicNames,
    namespace: str,
    mongo_db: MotorDatabase,
    kafka_bootstrap: str,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        **sandbox.notifier_env(),
        "NOTIFIER_PORT": str(port),
        "NOTIFIER_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "NOTIFIER_CONSUMER_GROUP": f"g-{namespace}",
        "HOTLINE_TOPIC_NAMESPACE": namespace,
        "MONGODB_DATABASE": mongo_db.name,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline_notifier.main", env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                assert process.returncode is None, "the notifier exited"
                await asyncio.sleep(0.1)
            d = decision(informed=[], citizen_reply="none")
            await produce(kafka_bootstrap, topics.dispatched, [encode(d)], key=b"HUE-20240124-0042")
            [alert] = await sandbox.sandbox.store.wait_for(1, timeout_s=30)
            link = next(w for w in alert.text.split() if w.startswith(f"{base}/ack/"))
            confirm = await client.get(link)
            assert confirm.status_code == 200 and "Xác nhận" in confirm.text
            done = await client.post(link, data={"recipient": "hue-city-o1"})
            assert done.status_code == 200, done.text
            metrics = (await client.get("/metrics")).text
            assert (
                'hotline_notifier_notifications_total{channel="zalo",outcome="sent",purpose="alert"}'
                in metrics
            )
        records = await read_topic(kafka_bootstrap, topics.case_events, expect=1)
        event = CaseEvent.model_validate_json(records[0].value or b"")
        assert (event.type.value, event.actor.id) == ("acknowledged", "hue-city-o1")
    finally:
        if process.returncode is None:
            process.terminate()
        assert await asyncio.wait_for(process.wait(), 20) in (0, -15)
