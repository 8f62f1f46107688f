"""`hotline bench` pieces that need no pipeline: statistics, verdicts, targets, PID files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hotline_cli.bench import (
    StepOutcome,
    lag_growth,
    percentile,
    process_start_time,
    stack_pids,
    summarise_folded,
    targets_of,
)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_lag_growth_tells_a_backlog_from_noise() -> None:
    steady = [(t * 2.0, 100 + (10 if t % 2 else -10)) for t in range(30)]
    growing = [(t * 2.0, 20 * t) for t in range(30)]
    assert abs(lag_growth(steady)) < 20
    assert lag_growth(growing) == pytest.approx(20 * 29)  # 20 messages more every sample
    assert lag_growth([(0.0, 5), (1.0, 500)]) == 0.0  # too few samples to call a trend


def step(**changes: object) -> StepOutcome:
    fields: dict[str, object] = {
        "tag": "t",
        "offered": 50.0,
        "seconds": 60.0,
        "sent": 3000,
        "accepted": 3000,
        "achieved_rate": 50.0,
        "drained": True,
        "loss": {"not_triaged": 0},
        "stages": {"end_to_end": {"p99": 430.0}},
    }
    fields.update(changes)
    return StepOutcome(**fields)  # type: ignore[arg-type]


def test_a_step_is_sustained_only_without_loss_backlog_or_slow_p99() -> None:
    ok = step()
    ok.judge()
    assert ok.sustained and ok.why_not == []
    for changes, reason in [
        ({"accepted": 2990}, "10 requests not accepted"),
        ({"achieved_rate": 40.0}, "the sender reached 40/s only"),
        ({"loss": {"not_triaged": 3}}, "loss"),
        ({"drained": False}, "did not drain"),
        ({"lag_growing": True, "lag_growth_msgs": 900.0}, "lag grew by 900 messages"),
        ({"stages": {"end_to_end": {"p99": 1500.0}}}, "p99 end to end 1500.0 ms"),
        ({"stages": {}}, "p99 end to end None ms"),
    ]:
        bad = step(**changes)
        bad.judge()
        assert not bad.sustained, changes
        assert any(reason in why for why in bad.why_not), (changes, bad.why_not)


def test_targets_are_judged_from_the_result() -> None:
    result = {
        "ratio_pipeline_to_ceiling": 0.004,
        "pipeline": {
            "sustained_max_msgs_s": 50.0,
            "at_100": {"stages": {"end_to_end": {"p99": 2286.5}}},
            "loss_after_final_drain": {"not_accepted": 0, "no_first_alert": 0},
            "drained": True,
        },
    }
    targets = targets_of(result)
    assert targets["sustained_msgs_s"] == {"target": 1000.0, "measured": 50.0, "met": False}
    assert targets["p99_e2e_at_100_ms"]["met"] is False
    assert targets["ratio_to_ceiling"]["met"] is False
    assert targets["zero_loss"] == {"target": 0, "measured": 0, "met": True}
    result["pipeline"]["loss_after_final_drain"] = {"no_first_alert": 2}  # type: ignore[index]
    assert targets_of(result)["zero_loss"]["met"] is False
    result["pipeline"]["drained"] = False  # type: ignore[index]
    result["pipeline"]["loss_after_final_drain"] = {}  # type: ignore[index]
    assert targets_of(result)["zero_loss"]["met"] is False  # undrained is not "no loss"


def test_folded_stacks_are_summarised_per_function_without_the_idle_loop() -> None:
    folded = "\n".join(
        [
            "main (svc/main.py:1);run (asyncio/base_events.py:9);select (selectors.py:5) 60",
            "main (svc/main.py:1);handle (/x/src/hotline_notifier/handlers.py:3);"
            "send (/x/site-packages/httpx/_client.py:7) 30",
            "main (svc/main.py:1);handle (/x/src/hotline_notifier/handlers.py:3) 10",
        ]
    )
    summary = summarise_folded(folded)
    assert summary["samples"] == 100 and summary["idle_pct"] == 60.0
    own = {row["function"]: row["pct_of_busy"] for row in summary["own"]}
    assert own == {"httpx/_client.py:send": 75.0, "hotline_notifier/handlers.py:handle": 25.0}
    ours = {row["function"]: row["pct_of_busy"] for row in summary["total_in_hotline"]}
    assert ours == {"hotline_notifier/handlers.py:handle": 100.0}


def test_the_stack_pid_files_are_read_with_their_start_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stack script writes "<pid> <start time>"; a PID reused by another process (another
    start time) is not measured as the broker."""
    monkeypatch.setenv("HOTLINE_STATE_DIR", str(tmp_path))
    run = tmp_path / "run"
    run.mkdir()
    me = os.getpid()
    started = process_start_time(me)
    assert started is not None and started.isdigit()
    (run / "kafka.pid").write_text(f"{me} {started}\n")
    (run / "ferretdb.pid").write_text(f"{me}\n")  # an older script's file: the PID alone
    assert stack_pids(tmp_path) == {"kafka": me, "ferretdb": me}
    (run / "kafka.pid").write_text(f"{me} {int(started) + 1}\n")
    (run / "ferretdb.pid").write_text("not a pid\n")
    assert stack_pids(tmp_path) == {}
