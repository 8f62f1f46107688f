"""The artefact: deterministic training, save/load round trip, fast loading, label vocabularies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from hotline_classifier import labels
from hotline_classifier.analysis import Analyser
from hotline_classifier.engine import TriageEngine
from hotline_classifier.features import FEATURE_VERSION
from hotline_classifier.gazetteer import Gazetteer
from hotline_classifier.model import MANIFEST, ModelError, TriageModel, default_model_dir
from hotline_classifier.train import CORPUS_DIR, PARAMS, digest, fit, load_jsonl


def _subset() -> list[dict[str, object]]:
    records = load_jsonl(CORPUS_DIR / "train.jsonl")
    # Every category and priority present, small enough to train in a second or two.
    return records[::8]


def test_training_is_deterministic(tmp_path: Path) -> None:
    records = _subset()
    analyser = Analyser(Gazetteer.load())
    first, second = tmp_path / "a", tmp_path / "b"
    fit(records, PARAMS, "tri-test", analyser).save(first)
    fit(records, PARAMS, "tri-test", analyser).save(second)
    for name in ("manifest.json", "vocab.txt", "weights.npz"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_round_trip_gives_the_same_predictions(tmp_path: Path) -> None:
    analyser = Analyser(Gazetteer.load())
    model = fit(_subset(), PARAMS, "tri-test", analyser)
    model.save(tmp_path)
    loaded = TriageModel.load(tmp_path)
    texts = ["Cháy nhà ở Kim Long", "chao anh", "em vua bi giat dt", "cho hoi lam cccd"]
    direct = TriageEngine(model, Gazetteer.load()).triage_many(texts)
    again = TriageEngine(loaded, Gazetteer.load()).triage_many(texts)
    assert [r.category for r in direct] == [r.category for r in again]
    assert [r.priority for r in direct] == [r.priority for r in again]
    np.testing.assert_allclose(
        [r.confidence for r in direct], [r.confidence for r in again], atol=1e-4
    )


def test_packaged_model_loads_fast_and_names_its_version() -> None:
    started = time.perf_counter()
    engine = TriageEngine.load()
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"loading took {elapsed:.2f}s"
    manifest = json.loads((default_model_dir() / MANIFEST).read_text(encoding="utf-8"))
    assert engine.model_version == manifest["model_version"]
    assert sorted(manifest["categories"]) == sorted(labels.CATEGORIES)
    size = sum(p.stat().st_size for p in default_model_dir().iterdir())
    assert size < 5_000_000


def test_model_built_for_other_features_is_refused(tmp_path: Path) -> None:
    for item in default_model_dir().iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    manifest = json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))
    manifest["feature_version"] = "f0"
    (tmp_path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelError, match="retrain"):
        TriageModel.load(tmp_path)


def test_missing_model_directory_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        TriageModel.load(tmp_path / "nothing-here")


def test_labels_match_the_shared_contract() -> None:
    contract = pytest.importorskip("hotline.contracts.labels")
    assert {c.value for c in contract.Category} == set(labels.CATEGORIES)
    assert {p.value for p in contract.Priority} == set(labels.PRIORITIES)
    assert {d.value for d in contract.District} == set(labels.DISTRICTS)
    assert {lang.value for lang in contract.Language} == set(labels.LANGUAGES)
    assert labels.is_category("theft")
    assert not labels.is_category("burglary")
    assert labels.is_priority("P1")
    assert labels.is_district("a_luoi")


def test_packaged_model_is_not_stale() -> None:
    # The version digests the training data, the parameters and the feature code: if any of
    # them changed since the artefact was built, it must be rebuilt (python -m ...train).
    expected = "tri-" + FEATURE_VERSION + "-" + digest([CORPUS_DIR / "train.jsonl"], PARAMS)[:12]
    assert TriageModel.load().version == expected
