"""``hotline-triage``: the exact JSON Lines interface the benchmark uses, run as a process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hotline.testing import skip_unless_required
from hotline.testing.paths import shared_dir
from hotline_classifier import labels

FIELDS = ["id", "category", "actionable", "priority", "location", "language", "confidence"]
SAMPLE = shared_dir() / "triage-sample.jsonl"
HELDOUT = Path(__file__).resolve().parents[1] / "data" / "corpus" / "heldout.jsonl"


MODULE = (sys.executable, "-m", "hotline_classifier.cli")
# The console script `make install` puts beside the interpreter (the pyproject entry point).
SCRIPT = Path(sys.executable).parent / "hotline-triage"


def run(
    args: list[str], stdin: str = "", command: Sequence[str] = MODULE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def contract_lines(
    proc: subprocess.CompletedProcess[str], ids: list[object]
) -> list[dict[str, Any]]:
    """The output lines, after checking each is exactly the contract's fields, in input order."""
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ids
    for o in out:
        assert list(o) == FIELDS
        assert isinstance(o["actionable"], bool)
        assert isinstance(o["confidence"], float)
    return out


def jsonl(lines: Sequence[object]) -> str:
    return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)


def test_stream_writes_one_line_per_input_in_order() -> None:
    lines = [
        {"id": "a", "text": "Cháy nhà ở Kim Long, còn người bên trong", "channel": "sms"},
        {"id": "b", "text": "Chào anh, hôm nay chưa có gì"},
        {"id": "c", "text": "", "channel": "voice"},
        {"id": 4, "text": "Someone stole my wallet at Dong Ba market yesterday"},
    ]
    out = contract_lines(run([], jsonl(lines)), ["a", "b", "c", 4])
    assert (out[0]["category"], out[0]["priority"], out[0]["location"]) == (
        "fire_rescue",
        "P1",
        "hue_city",
    )
    assert (out[1]["category"], out[1]["actionable"], out[1]["priority"]) == (
        "greeting",
        False,
        "P4",
    )
    assert (out[2]["category"], out[2]["priority"]) == ("other", "P2")
    assert (out[3]["category"], out[3]["language"], out[3]["location"]) == (
        "theft",
        "en",
        "hue_city",
    )


def test_the_installed_console_script_speaks_the_same_interface() -> None:
    """The benchmark runs `hotline-triage` from .venv/bin, not `python -m`: the entry point
    `make install` writes must exist and answer in the contract's format."""
    if not SCRIPT.is_file():
        pytest.fail(f"{SCRIPT} is missing: `make install` should install the console script")
    lines = [
        {"id": "s1", "text": "Cháy nhà ở Kim Long, còn người bên trong", "channel": "sms"},
        {"id": "s2", "text": "Chào anh, hôm nay chưa có gì"},
    ]
    out = contract_lines(run([], jsonl(lines), command=[str(SCRIPT)]), ["s1", "s2"])
    assert (out[0]["category"], out[0]["priority"]) == ("fire_rescue", "P1")
    assert (out[1]["category"], out[1]["actionable"]) == ("greeting", False)


def test_bad_lines_get_error_lines_and_never_stop_the_stream() -> None:
    stdin = "\n".join(
        [
            '{"id": "ok1", "text": "chao anh"}',
            "this is not json",
            "[1, 2, 3]",
            '{"id": "bad-type", "text": 42}',
            '{"id": "bad-channel", "text": "hi", "channel": 5}',
            "",
            '{"id": "ok2", "text": "em vừa bị giật túi ở chợ An Cựu"}',
        ]
    )
    proc = run([], stdin + "\n")
    assert proc.returncode == 0
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o.get("id") for o in out] == [
        "ok1",
        None,
        None,
        "bad-type",
        "bad-channel",
        "ok2",
    ]
    assert "error" not in out[0]
    assert out[-1]["category"] == "theft"
    for o in out[1:5]:
        assert set(o) == {"id", "error"}
    assert "invalid JSON" in out[1]["error"]
    assert "text" in out[3]["error"]
    stderr = proc.stderr.splitlines()
    assert len(stderr) == 4
    assert stderr[0].startswith("line 2:")


def test_missing_text_channel_or_kind_is_an_ordinary_empty_message() -> None:
    # TRIAGE.md: empty text is a greeting unless it is a call; a line without "text" is empty
    # text and gets the contract's fields, not an error.
    lines = [
        {"id": "no-text"},
        {"id": "empty", "text": ""},
        {"id": "null", "text": None},
        {"id": "no-text-voice", "channel": "voice"},
        {"id": "missed", "kind": "call_missed"},
    ]
    proc = run([], jsonl(lines))
    out = contract_lines(proc, [x["id"] for x in lines])
    assert proc.stderr == ""
    assert [(o["category"], o["priority"], o["actionable"]) for o in out] == [
        ("greeting", "P4", False),
        ("greeting", "P4", False),
        ("greeting", "P4", False),
        ("other", "P2", True),
        ("other", "P2", True),
    ]


def test_explain_adds_reasons_and_model_version() -> None:
    proc = run(["--explain"], '{"id": 1, "text": "cứu với, có người đuối nước ở biển Thuận An"}\n')
    out = json.loads(proc.stdout)
    assert out["priority"] == "P1"
    assert out["model_version"].startswith("tri-")
    assert any(r.startswith("urgency:") for r in out["reasons"])


def test_large_and_strange_inputs_do_not_crash() -> None:
    items = [
        {"id": "big", "text": "đánh nhau " * 12_000},
        {"id": "emoji", "text": "🙂🙂🙂"},
        {"id": "nul", "text": "a\u0000b"},
        {"id": "scripts", "text": "Привет 你好 Xin chào مرحبا"},
        {"id": "null-text", "text": None, "channel": "voice"},
    ]
    proc = run(["--batch-size", "2"], "".join(json.dumps(x) + "\n" for x in items))
    assert proc.returncode == 0
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == [x["id"] for x in items]
    assert all("error" not in o for o in out)
    assert out[1]["category"] == "greeting"
    assert (out[4]["category"], out[4]["priority"]) == ("other", "P2")


def test_invalid_utf8_bytes_are_replaced_not_fatal() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hotline_classifier.cli"],
        input=b'{"id": "x", "text": "ch\xe0o anh"}\n\xff\xfe\n',
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0
    out = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert out[0]["id"] == "x"
    assert "error" in out[1]


def test_eval_prints_every_figure() -> None:
    proc = run(["eval", str(HELDOUT)])
    assert proc.returncode == 0, proc.stderr
    for label in (
        "category accuracy",
        "category macro-F1",
        "actionable recall",
        "P1 recall",
        "P1 precision",
        "priority accuracy",
        "location accuracy",
        "language accuracy",
        "per-category F1",
    ):
        assert label in proc.stdout
    assert "officer_conduct" in proc.stdout


def test_eval_json_is_machine_readable() -> None:
    if not SAMPLE.exists():
        skip_unless_required(f"shared sample not found at {SAMPLE}")
    proc = run(["eval", str(SAMPLE), "--json"])
    metrics = json.loads(proc.stdout)
    assert metrics["n"] == sum(1 for line in SAMPLE.read_text("utf-8").splitlines() if line)
    for key in (
        "category_accuracy",
        "category_macro_f1",
        "category_f1",
        "actionable_recall",
        "p1_recall",
        "p1_precision",
        "priority_accuracy",
        "location_accuracy",
        "language_accuracy",
    ):
        assert key in metrics
    assert set(metrics["category_f1"]) <= set(labels.CATEGORIES)


def test_eval_of_a_missing_file_fails_cleanly(tmp_path: Path) -> None:
    proc = run(["eval", str(tmp_path / "missing.jsonl")])
    assert proc.returncode == 2
    assert "no such file" in proc.stderr
