"""Pytest fixtures for integration tests against the real local stack."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from hotline.contracts.topics import TopicNames
from hotline.kafka import ensure_topics
from hotline.mongo import MotorClient, MotorDatabase, make_client
from hotline.testing.paths import REPO_ROOT
from hotline.testing.paths import shared_dir as _shared_dir

SHARED_DIR = _shared_dir()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not _port_open(host or "127.0.0.1", int(port)):
        pytest.fail(f"no Kafka broker at {bootstrap}: start the local stack with `make stack-up`")
    return bootstrap


@pytest.fixture(scope="session")
def mongo_uri() -> str:
    uri = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
    hostport = uri.split("//", 1)[1].split("/", 1)[0].split("@")[-1].split(",")[0]
    host, _, port = hostport.rpartition(":")
    if not _port_open(host or "127.0.0.1", int(port or 27017)):
        pytest.fail(f"no MongoDB/FerretDB at {uri}: start the local stack with `make stack-up`")
    return uri


@pytest.fixture
def namespace() -> str:
    """A unique topic-name prefix for one test."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def topics(kafka_bootstrap: str, namespace: str) -> AsyncIterator[TopicNames]:
    """The registry's topics under a fresh namespace, deleted after the test."""
    names = TopicNames.for_namespace(namespace)
    await ensure_topics(kafka_bootstrap, names)
    yield names
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(Exception):  # best effort: a test may have stopped the broker
            await admin.delete_topics(names.all())
    finally:
        await admin.close()


@pytest.fixture
async def mongo_client(mongo_uri: str) -> AsyncIterator[MotorClient]:
    client = make_client(mongo_uri, "hotline-tests")
    yield client
    client.close()


@pytest.fixture
async def mongo_db(mongo_client: MotorClient) -> AsyncIterator[MotorDatabase]:
    """A fresh database for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    db = mongo_client[name]
    yield db
    with contextlib.suppress(Exception):  # best effort: a test may have stopped the database
        await asyncio.wait_for(mongo_client.drop_database(name), 10)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repository (TRIAGE.md, PROVIDERS.md, samples, CRDs)."""
    return SHARED_DIR


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def stack_script(repo_root: Path) -> Path:
    return repo_root / "deploy" / "local" / "stack.py"
