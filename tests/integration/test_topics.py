"""Topic creation from the registry, against the real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient

from hotline.contracts.topics import ALL_TOPICS, TopicNames
from hotline.kafka import ensure_topics

pytestmark = pytest.mark.integration


async def test_ensure_topics_creates_the_registry_once_and_returns_when_every_partition_leads(
    kafka_bootstrap: str,
) -> None:
    names = TopicNames.for_namespace(f"topics{uuid.uuid4().hex[:6]}")
    created = await ensure_topics(kafka_bootstrap, names)
    assert sorted(created) == sorted(names.all())

    # One metadata request, no waiting: every partition already has a leader.
    client = AIOKafkaClient(bootstrap_servers=kafka_bootstrap)
    await client.bootstrap()
    try:
        metadata = await client.fetch_all_metadata()
    finally:
        await client.close()
    for name, spec in zip(names.all(), ALL_TOPICS, strict=True):
        partitions = metadata.partitions_for_topic(name) or set()
        assert len(partitions) == spec.partitions, name
        leaders = {metadata.leader_for_partition(TopicPartition(name, p)) for p in partitions}
        assert None not in leaders and -1 not in leaders, (name, leaders)

    assert await ensure_topics(kafka_bootstrap, names) == []  # idempotent
