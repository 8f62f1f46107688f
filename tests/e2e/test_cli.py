"""The operator's `hotline` command against a running pipeline: status, cases, case, ack and
replay-deadletters, run as the installed console script with the pipeline's addresses in
HOTLINE_CLI_* / KAFKA_* / MONGODB_* variables (as an operator would)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
from pathlib import Path

import pytest

from hotline.contracts import DeadLetter, encode, example
from hotline.contracts.events import DeadLetterReason
from hotline.contracts.topics import TopicNames
from hotline.ids import new_event_id
from hotline.runner import make_dead_letter
from hotline.testing.e2e import ProviderClient, eventually, zalo_id
from hotline.testing.kafka import produce, read_to_end
from hotline_cli.pipeline import Pipeline, free_port
from hotline_ingest.samples import Samples

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

HOTLINE = Path(sys.executable).parent / "hotline"
EXAMPLE = example("InboundEvent")
CASE_ID = re.compile(r"\bHUE-\d{8}-\d{4,}\b")
KNIFE = (
    "Anh ơi cứu với, có nhóm thanh niên đang cầm dao chém nhau trước quán nhậu trên đường Hùng "
    "Vương, một người nằm bất tỉnh máu chảy nhiều lắm"
)


async def cli(pipeline: Pipeline, *args: str, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(HOTLINE),
        *args,
        env={**os.environ, **pipeline.cli_env(), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _row(output: str, first_column: str) -> list[str]:
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] == first_column:
            return cells
    raise AssertionError(f"no {first_column!r} row in:\n{output}")


async def test_cases_case_and_ack_on_a_reported_incident(
    pipeline: Pipeline, samples: Samples, provider: ProviderClient
) -> None:
    citizen = zalo_id()
    answer = await provider.post(samples.zalo(text=KNIFE, user_id=citizen), retry=False)
    assert answer.status == 200, answer

    async def listed() -> list[str] | None:
        code, out, err = await cli(pipeline, "cases", "--open", "--priority", "P1")
        assert code == 0, err
        return CASE_ID.findall(out) or None

    found = await eventually(listed, timeout_s=45, interval_s=1.0)
    assert found and len(found) == 1, found
    case_id = found[0]

    code, out, err = await cli(pipeline, "case", case_id)
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{case_id}  P1 violence  state=assigned"), out
    assert "opened" in out and "assigned" in out

    code, out, err = await cli(pipeline, "ack", case_id, "--note", "đã cử tổ công tác")
    assert (code, out.strip()) == (0, f"{case_id}: acknowledged"), err

    code, out, _ = await cli(pipeline, "case", case_id)
    assert "state=acknowledged" in out.splitlines()[0]
    timeline = out.split("timeline:", 1)[1].splitlines()
    assert any(line.split()[1:2] == ["acknowledged"] for line in timeline), out
    code, out, _ = await cli(pipeline, "cases", "--state", "acknowledged")
    assert CASE_ID.findall(out) == [case_id]

    code, _, err = await cli(pipeline, "ack", "HUE-19990101-9999")
    assert code == 1 and ("404" in err or "not found" in err.lower()), err


async def test_replay_deadletters_puts_replayable_letters_back_once(
    pipeline: Pipeline, topic_names: TopicNames
) -> None:
    event_id = new_event_id()
    good = json.dumps(
        dict(EXAMPLE, event_id=event_id, text="Chào anh, hôm nay chưa có gì")
    ).encode()
    letters = [
        make_dead_letter(
            service="classifier",
            topic=topic_names.inbound,
            partition=0,
            offset=7,
            key=b"zalo:replay",
            value=good,
            reason=DeadLetterReason.HANDLER_ERROR,
            detail="model file missing (fixed since)",
        ),
        make_dead_letter(
            service="classifier",
            topic=topic_names.inbound,
            partition=0,
            offset=8,
            key=b"zalo:replay",
            value=b"\xff\xfe not text",
            reason=DeadLetterReason.UNDECODABLE,
            detail="value is not UTF-8",
        ),
    ]
    await produce(pipeline.kafka_bootstrap, topic_names.deadletter, [encode(d) for d in letters])
    replayable: DeadLetter = letters[0]

    code, out, err = await cli(pipeline, "replay-deadletters", "--dry-run")
    assert code == 0, err
    assert f"would replay {replayable.dlq_id} → {topic_names.inbound}" in out, out
    assert "0 replayed" in out

    code, out, _ = await cli(pipeline, "replay-deadletters")
    assert code == 0 and "1 replayed," in out and "1 not replayable" in out, out

    async def triaged() -> bool:
        records = await read_to_end(pipeline.kafka_bootstrap, topic_names.triaged)
        return any(json.loads(r.value or b"{}").get("event_id") == event_id for r in records)

    assert await eventually(triaged, timeout_s=45, interval_s=1.0), "replayed event not triaged"

    code, out, _ = await cli(pipeline, "replay-deadletters")
    assert "0 replayed, 1 replayed before" in out, out


async def test_replay_deadletters_never_publishes_an_undeliverable_alert(
    pipeline: Pipeline, topic_names: TopicNames
) -> None:
    # What the notifier dead-letters when every channel of a recipient failed: its source is
    # the deliveries topic, its value a summary of the notification (not a DeliveryOutcome).
    case_id = f"HUE-20240124-{secrets.randbelow(9000) + 1000}"
    summary = {
        "case_id": case_id,
        "source_id": "dec-undeliverable",
        "step": "L1",
        "purpose": "escalation",
        "recipient_id": "hue-city-cmd",
        "outcomes": [],
    }
    letter = make_dead_letter(
        service="notifier",
        topic=topic_names.deliveries,
        partition=None,
        offset=None,
        key=case_id.encode(),
        value=json.dumps(summary).encode(),
        reason=DeadLetterReason.UNDELIVERABLE,
        detail="every channel of hue-city-cmd failed for escalation",
        attempts=3,
    )
    await produce(pipeline.kafka_bootstrap, topic_names.deadletter, [encode(letter)])

    code, out, err = await cli(pipeline, "replay-deadletters", "--dry-run")
    assert code == 0, err
    assert f"would replay {letter.dlq_id}" not in out, out
    line = next((ln for ln in out.splitlines() if letter.dlq_id in ln), "")
    assert line.startswith(f"not replayable {letter.dlq_id} (undeliverable):"), out
    assert f"case_id={case_id}" in line and "recipient_id=hue-city-cmd" in line, line

    code, out, err = await cli(pipeline, "replay-deadletters", "--reason", "undeliverable")
    assert code == 0, err
    assert "0 replayed," in out and "1 undeliverable alerts" in out, out
    records = await read_to_end(pipeline.kafka_bootstrap, topic_names.deliveries)
    assert not [r for r in records if r.key == case_id.encode()], "published to deliveries"


async def test_status_lists_every_component_with_its_state_and_the_consumer_lag(
    pipeline: Pipeline, topic_names: TopicNames
) -> None:
    # This pipeline runs no console: its address is a closed port, so status must say so and
    # exit non-zero while everything else is ready.
    closed = f"http://127.0.0.1:{free_port()}"
    code, out, _ = await cli(pipeline, "status", HOTLINE_CLI_CONSOLE_URL=closed)
    for name in ("kafka", "mongodb", "ingest", "classifier", "dispatcher", "notifier"):
        assert _row(out, name)[1] == "ready", out
    assert _row(out, "console")[1:3] == ["down", closed], out
    assert code == 3

    # The tests above sent messages through every topic: every group of the pipeline has
    # committed, so each (group, topic) has a row, and once the pipeline is idle every lag is 0.
    wanted = {(g, t) for g, topics in pipeline.consumer_groups().items() for t in topics}

    async def lags() -> dict[tuple[str, str], int] | None:
        _, out, _ = await cli(pipeline, "status", HOTLINE_CLI_CONSOLE_URL=closed)
        rows = {
            (c[0], c[1]): int(c[2])
            for c in (line.split() for line in out.splitlines())
            if len(c) == 3 and c[2].isdigit()
        }
        return rows if wanted <= set(rows) and not any(rows[w] for w in wanted) else None

    assert await eventually(lags, timeout_s=30, interval_s=1.0), out

    # With the console's address pointing at a ready service (the notifier answers /readyz),
    # every component is ready and the exit status is 0.
    code, out, _ = await cli(pipeline, "status", HOTLINE_CLI_CONSOLE_URL=pipeline.url("notifier"))
    assert code == 0, out
