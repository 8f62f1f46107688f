"""Throughput of ``TriageEngine.triage_many`` on one core, in batches.

Run: ``.venv/bin/python services/classifier/bench/bench_engine.py [--batch 256] [--seconds 5]``

Messages come from the corpus (train and held-out splits), so lengths and the share of rule
cases (emoji, empty calls) are realistic. The engine is single-threaded; numpy/scipy are
limited to one thread so the figure is per core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# Must be set before numpy loads its BLAS.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hotline_classifier.engine import TriageEngine  # noqa: E402 - after the thread settings

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


def load_texts() -> list[tuple[str, str | None]]:
    items: list[tuple[str, str | None]] = []
    for name in ("train.jsonl", "heldout.jsonl"):
        with (CORPUS / name).open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    items.append((record["text"], record.get("channel")))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="messages per triage_many call")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum measuring time")
    parser.add_argument("--repeats", type=int, default=3, help="measurements (median reported)")
    args = parser.parse_args()

    started = time.perf_counter()
    engine = TriageEngine.load()
    load_seconds = time.perf_counter() - started
    items = load_texts()
    texts = [t for t, _ in items]
    channels = [c for _, c in items]
    engine.triage_many(texts[:512], channels[:512])  # warm-up

    rates: list[float] = []
    cpu_rates: list[float] = []
    for _ in range(args.repeats):
        done = 0
        begin = time.perf_counter()
        cpu_begin = time.process_time()
        while time.perf_counter() - begin < args.seconds:
            for start in range(0, len(texts), args.batch):
                engine.triage_many(
                    texts[start : start + args.batch], channels[start : start + args.batch]
                )
            done += len(texts)
        rates.append(done / (time.perf_counter() - begin))
        # CPU time of this process: the per-core figure even when other work shares the host.
        cpu_rates.append(done / (time.process_time() - cpu_begin))
    mean_len = statistics.mean(len(t) for t in texts)
    print(f"model {engine.model_version}: loaded in {load_seconds * 1000:.0f} ms")
    print(f"{len(texts)} messages (mean {mean_len:.0f} chars), batches of {args.batch}, one core")
    print(
        f"throughput: {statistics.median(cpu_rates):,.0f} messages/s per CPU-second, "
        f"{statistics.median(rates):,.0f} messages/s wall clock (runs: "
        + ", ".join(f"{r:,.0f}" for r in rates)
        + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
