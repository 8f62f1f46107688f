"""`hotline bench --quick --json` on the real stack: a well-formed result, nothing lost.

No assertion is about speed (a shared machine makes timed assertions flaky): the smoke test
checks that one quick run measures every part of the benchmark, writes its JSON result, and
that every message ingest accepted was triaged, decided and alerted (or answered).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_quick_bench_writes_a_complete_result_with_zero_loss(
    kafka_bootstrap: str, mongo_uri: str, tmp_path: Path
) -> None:
    hotline = Path(sys.executable).parent / "hotline"
    proc = subprocess.run(
        # Two short steps rather than the quick run's three of 15 s: the test reads only the
        # 100/s step, and a ladder of two still exercises the sustained-maximum logic.
        [
            str(hotline),
            "bench",
            "--quick",
            "--rates",
            "25,100",
            "--step-seconds",
            "10",
            "--json",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MONGODB_URI": mongo_uri},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    written = sorted(tmp_path.glob("*.json"))
    assert len(written) == 1
    assert json.loads(written[0].read_text("utf-8"))["commit"] == result["commit"]
    assert written[0].name.endswith(f"-{result['commit']['short']}.json")

    machine = result["machine"]
    for key in ("nproc", "memory_mib", "python", "load_before", "load_after"):
        assert machine[key], key
    assert len(machine["load_before"]) == 3

    ceiling = result["ceiling"]
    assert ceiling["hops"] == 4
    assert ceiling["flat_out"]["lost"] == 0
    assert ceiling["flat_out"]["throughput_msgs_s"] > 0
    assert ceiling["flat_out"]["latency_ms"]["p99"] is not None
    assert set(ceiling["record_bytes"]) == {"inbound", "triaged", "dispatched", "deliveries"}

    pipeline = result["pipeline"]
    assert pipeline["steps"], "no rate step ran"
    [first] = [s for s in pipeline["steps"] if s["offered"] == 100]
    assert first["accepted"] > 0
    for stage in ("end_to_end", "ingest_accept", "classify", "dispatch", "notify"):
        assert first["stages"][stage]["n"] > 0, stage
        assert first["stages"][stage]["p99"] is not None, stage
    for name in ("ingest", "classifier", "dispatcher", "notifier"):
        usage = first["usage"]["processes"][name]
        assert usage["cpu_s"] >= 0 and usage["peak_rss_mib"] > 0, name
    assert "ratio_pipeline_to_ceiling" in result
    assert set(result["targets"]) == {
        "sustained_msgs_s",
        "p99_e2e_at_100_ms",
        "ratio_to_ceiling",
        "zero_loss",
    }

    assert pipeline["drained"], "the pipeline did not finish the accepted messages"
    lost = {k: v for k, v in pipeline["loss_after_final_drain"].items() if k != "not_accepted"}
    assert not any(lost.values()), lost
