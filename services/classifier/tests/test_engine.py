"""The engine's fast inference path against the training path, and batch behaviour.

Inference does not rebuild the training features: it sums memoised per-word and per-bigram
rows (``model.ScoreTable``) and copies the message-level features (``model.message_features``)
because features.py is part of the model version. These tests keep the two paths together.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import sparse

from hotline.testing.paths import shared_dir
from hotline_classifier import train
from hotline_classifier.analysis import Analysis
from hotline_classifier.engine import TriageEngine
from hotline_classifier.features import FEATURE_VERSION, feature_parts, signal_feature_names
from hotline_classifier.model import message_features

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE = shared_dir() / "triage-sample.jsonl"


def _records() -> list[dict[str, Any]]:
    paths = [DATA / "corpus" / "heldout.jsonl", *sorted((DATA / "eval").glob("*.jsonl"))]
    if SAMPLE.exists():
        paths.append(SAMPLE)
    records: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    return records


@pytest.fixture(scope="module")
def engine() -> TriageEngine:
    return TriageEngine.load()


@pytest.fixture(scope="module")
def analyses(engine: TriageEngine) -> list[Analysis]:
    return [engine.analyser.analyse(r.get("text"), r.get("channel")) for r in _records()]


def test_the_packaged_model_is_what_make_train_rebuilds(engine: TriageEngine) -> None:
    # model_version digests the training split, the parameters and the source of the feature
    # modules: editing one of those without retraining leaves an artefact the code cannot
    # reproduce (and that may no longer see the features it was trained on).
    version = (
        f"tri-{FEATURE_VERSION}-"
        + train.digest([train.CORPUS_DIR / "train.jsonl"], train.PARAMS)[:12]
    )
    assert engine.model_version == version


def test_message_features_are_those_of_feature_parts(analyses: list[Analysis]) -> None:
    for a in analyses:
        expected = feature_parts(a.norm, a.lexicon, a.signals)[0]
        assert message_features(a.norm, a.lexicon, a.signals) == expected, a.norm.text


def test_text_scores_are_the_training_features_times_the_coefficients(
    engine: TriageEngine, analyses: list[Analysis]
) -> None:
    model = engine.model
    size = model.vectorizer.size
    cat, pri = model.table.scores(
        [
            (message_features(a.norm, a.lexicon, a.signals), a.norm.text, a.norm.ascii)
            for a in analyses
        ]
    )
    matrix = model.vectorizer.transform([a.features() for a in analyses])
    np.testing.assert_allclose(cat, matrix @ model.category.coef, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pri, matrix @ model.priority.coef[:size], rtol=1e-4, atol=1e-5)


def test_signal_scores_are_the_sparse_product_bit_for_bit(engine: TriageEngine) -> None:
    model = engine.model
    names = signal_feature_names()
    rng = np.random.default_rng(7)
    rows = [
        [names[j] for j in rng.choice(len(names), size=int(rng.integers(1, 12)))] + ["unknown"]
        for _ in range(500)
    ]
    index = {name: i for i, name in enumerate(names)}
    r = [i for i, active in enumerate(rows) for _ in {index[a] for a in active if a in index}]
    c = [j for active in rows for j in {index[a] for a in active if a in index}]
    matrix = sparse.csr_matrix(
        (np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(rows), len(names)), dtype=np.float32
    )
    expected = np.asarray(matrix @ model.priority.coef[model.vectorizer.size :], dtype=np.float32)
    assert model.signal_scores(rows).tobytes() == expected.tobytes()


def test_a_batch_gives_each_item_what_it_gets_alone(engine: TriageEngine) -> None:
    texts = [
        "Sáng nay có người trộm xe máy ở chợ Đông Ba",
        "alo",
        "",
        "cứu với, có người đuối nước ở cầu Tràng Tiền",
        "Someone stole my wallet at Dong Ba market yesterday",
    ]
    afternoon = datetime(2026, 12, 1, 15, 0, tzinfo=timezone(timedelta(hours=7)))
    # The same instant, but 08:00 where it was written: "sáng nay" reads differently.
    morning = afternoon.astimezone(UTC)
    items = [
        (text, channel, None, when)
        for text in texts
        for channel in (None, "voice")
        for when in (None, afternoon, morning)
    ]
    batch = items + items[::-1]  # every item twice, in another order
    results = engine.triage_many(
        [i[0] for i in batch], [i[1] for i in batch], [i[2] for i in batch], [i[3] for i in batch]
    )
    fresh = TriageEngine.load()
    for item, result in zip(batch, results, strict=True):
        assert result == fresh.triage(*item), item
    assert results[1].reasons != results[2].reasons  # afternoon and morning differ
