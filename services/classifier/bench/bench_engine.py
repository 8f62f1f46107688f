"""Throughput of ``TriageEngine.triage_many`` on one core, in batches.

Run: ``.venv/bin/python services/classifier/bench/bench_engine.py [--batch 256] [--seconds 5]``

Messages come from the corpus (train and held-out splits), so lengths and the share of rule
cases (emoji, empty calls) are realistic. The engine is single-threaded; numpy/scipy are
limited to one thread so the figure is per core.

The throughput figure is the engine's steady state (its per-word score cache warm, as in a
long-running agent); the report also gives a first pass with a fresh engine, and where the
time of a message goes (CPU µs per message): normalisation, the rest of the text analysis
(phrases, places, cues, times), and the model and priority rules.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Must be set before numpy loads its BLAS.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hotline_classifier.engine import TriageEngine  # noqa: E402 - after the thread settings
from hotline_classifier.normalize import MAX_CHARS, normalize  # noqa: E402

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
    parser.add_argument(
        "--no-stages", dest="stages", action="store_false", help="skip the first-pass and split"
    )
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
            run_batches(engine, texts, channels, args.batch)
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
    if args.stages:
        print_stages(engine, texts, channels, args.batch)
    return 0


def run_batches(
    engine: TriageEngine, texts: list[str], channels: list[str | None], batch: int
) -> None:
    for start in range(0, len(texts), batch):
        engine.triage_many(texts[start : start + batch], channels[start : start + batch])


def cpu_us_per_message(work: Callable[[], object], count: int, repeats: int = 3) -> float:
    """Best of ``repeats`` CPU times of ``work``, in µs per message."""
    best = math.inf
    for _ in range(repeats):
        begin = time.process_time()
        work()
        best = min(best, time.process_time() - begin)
    return best / count * 1e6


def print_stages(
    engine: TriageEngine, texts: list[str], channels: list[str | None], batch: int
) -> None:
    """A fresh engine's first pass, and the split of a warm pass between the stages."""
    fresh = TriageEngine.load()
    begin = time.process_time()
    run_batches(fresh, texts, channels, batch)
    cold = len(texts) / (time.process_time() - begin)
    n = len(texts)
    total = cpu_us_per_message(lambda: run_batches(engine, texts, channels, batch), n)
    norm = cpu_us_per_message(lambda: [normalize(t, MAX_CHARS) for t in texts], n)
    pairs = list(zip(texts, channels, strict=True))
    analyse = engine.analyser.analyse
    analysis = cpu_us_per_message(lambda: [analyse(t, c) for t, c in pairs], n)
    model = max(total - analysis, 0.0)
    print(f"first pass, fresh engine: {cold:,.0f} messages/s per CPU-second")
    print(
        f"CPU per message (best of 3 warm passes): {total:.0f} µs = normalisation {norm:.0f}"
        f" ({norm / total:.0%}) + rest of the text analysis {analysis - norm:.0f}"
        f" ({(analysis - norm) / total:.0%}) + model and priority {model:.0f}"
        f" ({model / total:.0%})"
    )


if __name__ == "__main__":
    sys.exit(main())
