"""The event contracts, their examples and the topic registry stay consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import hotline.contracts.events as events
from hotline.contracts import (
    ALL_TOPICS,
    Channel,
    InboundEvent,
    TopicNames,
    TriagedEvent,
    decode,
    encode,
)

EXAMPLES = Path(events.__file__).parent / "examples"
EVENT_MODELS: set[type[BaseModel]] = {spec.value_model for spec in ALL_TOPICS}


def _example(model: type[BaseModel]) -> Path:
    return EXAMPLES / f"{model.__name__}.json"


@pytest.mark.parametrize("model", sorted(EVENT_MODELS, key=repr))
def test_every_topic_model_has_a_valid_example_that_round_trips(model: type[BaseModel]) -> None:
    raw = _example(model).read_text()
    parsed = decode(model, raw)
    again = decode(model, encode(parsed))
    assert again == parsed
    # Every field of the example survives (no silently dropped keys).
    assert set(json.loads(raw)) <= set(model.model_fields)


def test_no_example_without_a_topic() -> None:
    names = {p.stem for p in EXAMPLES.glob("*.json")}
    assert names == {m.__name__ for m in EVENT_MODELS}


def test_topic_registry_is_complete_and_unique() -> None:
    names = [spec.name for spec in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert {
        "hotline.inbound.v1",
        "hotline.triaged.v1",
        "hotline.dispatched.v1",
        "hotline.case-events.v1",
        "hotline.deliveries.v1",
        "hotline.deadletter.v1",
    } == set(names)
    for spec in ALL_TOPICS:
        assert spec.partitions >= 1
        assert spec.producers, spec.name
        assert spec.consumers, spec.name
        assert spec.config()["cleanup.policy"] in ("delete", "compact")


def test_namespaced_topic_names_map_back_to_their_specs() -> None:
    names = TopicNames.for_namespace("t123")
    assert names.inbound == "t123.hotline.inbound.v1"
    assert names.spec_for(names.triaged).value_model is TriagedEvent
    with pytest.raises(KeyError):
        names.spec_for("hotline.inbound.v1")


def test_invalid_inbound_names_the_field() -> None:
    data = json.loads(_example(InboundEvent).read_text())
    data["channel"] = "pigeon"
    with pytest.raises(ValidationError) as err:
        decode(InboundEvent, json.dumps(data))
    assert "channel" in str(err.value)


def test_provider_ids_stay_strings_beyond_2_53() -> None:
    data = json.loads(_example(InboundEvent).read_text())
    data["provider_message_id"] = "5466394919049723652"
    event = decode(InboundEvent, json.dumps(data))
    assert event.provider_message_id == "5466394919049723652"
    assert event.channel is Channel.ZALO


def test_key_is_channel_and_sender() -> None:
    event = decode(InboundEvent, _example(InboundEvent).read_text())
    assert event.key == "zalo:8800112233445566"


def test_naive_timestamps_are_rejected() -> None:
    data = json.loads(_example(InboundEvent).read_text())
    data["received_at"] = "2024-01-24T01:42:03"
    with pytest.raises(ValidationError, match="received_at"):
        decode(InboundEvent, json.dumps(data))
