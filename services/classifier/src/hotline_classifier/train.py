"""Rebuild the triage model: ``python -m hotline_classifier.train``.

Deterministic: the corpus files, the parameters below and the feature code fully decide the
artefact (fixed solver, no random state involved, sorted vocabulary, fixed zip timestamps),
so the same inputs give byte-identical files. ``model_version`` is a digest of those inputs.

After training, the model is scored on the held-out split of the corpus, on the shared sample
(../shared/triage-sample.jsonl) when present, and on every probe set in ``data/eval/``
(fresh messages written against TRIAGE.md by hand), none of which it was trained on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from .analysis import Analyser
from .engine import TriageEngine
from .evaluate import format_report, score
from .features import (
    FEATURE_VERSION,
    signal_feature_names,
    signal_features,
    signal_names,
)
from .gazetteer import Gazetteer
from .labels import ACTIONABLE_PRIORITIES, CATEGORIES, Category
from .lexicon import CATEGORY_CUES
from .model import LinearHead, TriageModel, Vectorizer, default_model_dir
from .signals import SIGNAL_PHRASES

PACKAGE_ROOT: Final = Path(__file__).resolve().parents[2]
CORPUS_DIR: Final = PACKAGE_ROOT / "data" / "corpus"
# Hand-labelled probe sets: evaluation only, never read for training.
EVAL_DIR: Final = PACKAGE_ROOT / "data" / "eval"
SHARED_SAMPLE: Final = PACKAGE_ROOT.parents[1].parent / "shared" / "triage-sample.jsonl"

FEATURE_MODULES: Final = (
    "normalize.py",
    "language.py",
    "phrases.py",
    "cues.py",
    "signals.py",
    "elapsed.py",
    "lexicon.py",
    "gazetteer.py",
    "analysis.py",
    "features.py",
    "data/gazetteer.yaml",
)

PARAMS: Final[dict[str, Any]] = {
    "min_df": 2,
    "category_C": 20.0,
    "priority_C": 10.0,
    "max_iter": 5000,
    "tol": 1e-6,
}


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON Lines file (blank lines skipped)."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def digest(paths: Sequence[Path], params: dict[str, Any]) -> str:
    """sha256 of everything that decides the artefact."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(FEATURE_VERSION.encode())
    h.update(json.dumps(SIGNAL_PHRASES, sort_keys=True, ensure_ascii=False).encode())
    h.update(json.dumps(CATEGORY_CUES, sort_keys=True, ensure_ascii=False).encode())
    # The code that turns text into features is part of the model too.
    for module in FEATURE_MODULES:
        h.update((Path(__file__).parent / module).read_bytes())
    return h.hexdigest()


def fit(
    records: Sequence[dict[str, Any]],
    params: dict[str, Any],
    version: str,
    analyser: Analyser,
) -> TriageModel:
    """Train both heads on labelled records (``analyser`` supplies text analysis only)."""
    analyses = [analyser.analyse(r["text"], r.get("channel")) for r in records]
    docs = [a.features() for a in analyses]
    vectorizer = Vectorizer.fit(docs, min_df=int(params["min_df"]))
    x_text = vectorizer.transform(docs)

    categories: list[Category] = [r["category"] for r in records]
    cat_model = LogisticRegression(
        C=float(params["category_C"]),
        max_iter=int(params["max_iter"]),
        tol=float(params["tol"]),
        class_weight=params.get("class_weight"),
    )
    cat_model.fit(x_text, categories)
    cat_classes = tuple(str(c) for c in cat_model.classes_)
    if set(cat_classes) != set(CATEGORIES):
        raise SystemExit(f"corpus lacks categories: {set(CATEGORIES) - set(cat_classes)}")

    names = signal_feature_names()
    index = {name: i for i, name in enumerate(names)}
    rows: list[int] = []
    cols: list[int] = []
    keep: list[int] = []
    for i, (record, analysis) in enumerate(zip(records, analyses, strict=True)):
        if record["priority"] not in ACTIONABLE_PRIORITIES:
            continue
        keep.append(i)
        found = signal_names(analysis.signals)
        for feature in set(signal_features(record["category"], found)):
            rows.append(len(keep) - 1)
            cols.append(index[feature])
    x_signal = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(keep), len(names)),
        dtype=np.float32,
    )
    x_priority = sparse.hstack([x_text[keep], x_signal], format="csr")
    priorities = [records[i]["priority"] for i in keep]
    pri_model = LogisticRegression(
        C=float(params["priority_C"]), max_iter=int(params["max_iter"]), tol=float(params["tol"])
    )
    pri_model.fit(x_priority, priorities)

    return TriageModel(
        version=version,
        vectorizer=vectorizer,
        category=LinearHead(
            cat_classes,
            np.ascontiguousarray(cat_model.coef_.T, dtype=np.float32),
            np.asarray(cat_model.intercept_, dtype=np.float32),
        ),
        priority=LinearHead(
            tuple(str(c) for c in pri_model.classes_),
            np.ascontiguousarray(pri_model.coef_.T, dtype=np.float32),
            np.asarray(pri_model.intercept_, dtype=np.float32),
        ),
        signal_names=names,
        manifest={"params": params, "training_messages": len(records)},
    )


def evaluate_file(engine: TriageEngine, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Score the engine on labelled records."""
    results = engine.triage_many(
        [r.get("text") for r in records], [r.get("channel") for r in records]
    )
    return score(records, [r.to_dict() for r in results])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR, help="train/heldout JSONL dir")
    parser.add_argument("--out", type=Path, default=default_model_dir(), help="model directory")
    parser.add_argument("--sample", type=Path, default=SHARED_SAMPLE, help="extra labelled file")
    args = parser.parse_args(argv)

    train_path = args.corpus / "train.jsonl"
    heldout_path = args.corpus / "heldout.jsonl"
    started = time.perf_counter()
    records = load_jsonl(train_path)
    version = "tri-" + FEATURE_VERSION + "-" + digest([train_path], PARAMS)[:12]
    model = fit(records, PARAMS, version, Analyser(Gazetteer.load()))
    model.save(args.out)
    print(
        f"trained {version} on {len(records)} messages in {time.perf_counter() - started:.1f}s"
        f" → {args.out}"
    )

    engine = TriageEngine(TriageModel.load(args.out), Gazetteer.load())
    reports = [("held-out split", heldout_path), ("shared sample", args.sample)]
    reports += [(f"probe {p.stem}", p) for p in sorted(EVAL_DIR.glob("*.jsonl"))]
    for name, path in reports:
        if not path.exists():
            print(f"({name}: {path} not found, skipped)")
            continue
        print(f"\n== {name}: {path}")
        print(format_report(evaluate_file(engine, load_jsonl(path))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
