"""The trained artefact: a tf-idf vocabulary plus two linear heads, evaluated with numpy.

Training uses scikit-learn; the artefact keeps only what inference needs (feature names, idf
weights, coefficients), so loading is a file read and scoring is one sparse matrix product per
batch. Files in the model directory:

* ``manifest.json`` — version, class lists, parameters, training-data digest, metrics;
* ``vocab.txt`` — one feature string per line (line number = column);
* ``weights.npz`` — ``idf``, ``category_coef``, ``category_intercept``, ``priority_coef``,
  ``priority_intercept``, written with fixed zip timestamps so a rebuild is byte-identical.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import sparse

from .features import FEATURE_VERSION

FloatArray = npt.NDArray[np.float32]

MANIFEST: Final = "manifest.json"
VOCAB: Final = "vocab.txt"
WEIGHTS: Final = "weights.npz"
_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)


class ModelError(RuntimeError):
    """The model directory is missing, incomplete or built for other features."""


def default_model_dir() -> Path:
    """The artefact shipped inside the package."""
    return Path(__file__).resolve().parent / "model"


@dataclass(slots=True)
class Vectorizer:
    """Sublinear tf-idf over a fixed vocabulary, rows L2-normalised (like scikit-learn's)."""

    vocabulary: dict[str, int]
    idf: FloatArray

    @classmethod
    def fit(cls, documents: Sequence[Sequence[str]], min_df: int = 2) -> Vectorizer:
        """Vocabulary of features seen in at least ``min_df`` documents, sorted for stability."""
        df: dict[str, int] = {}
        for features in documents:
            for f in set(features):
                df[f] = df.get(f, 0) + 1
        kept = sorted(f for f, count in df.items() if count >= min_df)
        n = len(documents)
        counts = np.array([df[f] for f in kept], dtype=np.float64)
        idf = (np.log((1.0 + n) / (1.0 + counts)) + 1.0).astype(np.float32)
        return cls({f: i for i, f in enumerate(kept)}, idf)

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    def transform(self, documents: Sequence[Sequence[str]]) -> sparse.csr_matrix:
        """Documents (lists of feature strings) → CSR matrix of tf-idf rows."""
        get = self.vocabulary.get
        rows: list[int] = []
        cols: list[int] = []
        for i, features in enumerate(documents):
            found = [j for j in map(get, features) if j is not None]
            cols.extend(found)
            rows.extend([i] * len(found))
        n = len(documents)
        data = np.ones(len(cols), dtype=np.float32)
        matrix = sparse.csr_matrix(
            (data, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(n, self.size),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        matrix.data = (1.0 + np.log(matrix.data)) * self.idf[matrix.indices]
        squares = matrix.multiply(matrix).sum(axis=1).A1
        norms = np.sqrt(squares, dtype=np.float64)
        norms[norms == 0.0] = 1.0
        scale = sparse.diags((1.0 / norms).astype(np.float32))
        return sparse.csr_matrix(scale @ matrix)


@dataclass(slots=True)
class LinearHead:
    """Multinomial logistic regression head: ``softmax(X @ coef + intercept)``."""

    classes: tuple[str, ...]
    coef: FloatArray
    """Shape (n_features, n_classes)."""
    intercept: FloatArray

    def probabilities(self, scores: FloatArray) -> FloatArray:
        """Softmax of raw scores (rows: documents)."""
        shifted = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        out: FloatArray = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        return out

    def scores(self, matrix: sparse.csr_matrix | sparse.csr_array) -> FloatArray:
        """Raw class scores of a feature matrix."""
        raw = np.asarray(matrix @ self.coef, dtype=np.float32)
        out: FloatArray = raw + self.intercept
        return out


@dataclass(slots=True)
class TriageModel:
    """Everything inference needs: vectorizer, category head, priority head."""

    version: str
    vectorizer: Vectorizer
    category: LinearHead
    priority: LinearHead
    """Columns: the text vocabulary, then the signal block (``signal_names``)."""
    signal_names: tuple[str, ...]
    manifest: dict[str, Any] = field(default_factory=dict)
    _signal_index: dict[str, int] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._signal_index = {name: i for i, name in enumerate(self.signal_names)}

    def signal_matrix(self, rows: Sequence[Sequence[str]]) -> sparse.csr_matrix:
        """Binary matrix of the signal block for each document's active signal features."""
        index = self._signal_index
        r: list[int] = []
        c: list[int] = []
        for i, active in enumerate(rows):
            cols = {index[a] for a in active if a in index}
            c.extend(cols)
            r.extend([i] * len(cols))
        return sparse.csr_matrix(
            (np.ones(len(c), dtype=np.float32), (r, c)),
            shape=(len(rows), len(self.signal_names)),
            dtype=np.float32,
        )

    def priority_scores(
        self, text_matrix: sparse.csr_matrix, signal_matrix: sparse.csr_matrix
    ) -> FloatArray:
        """Raw priority scores from the text block and the signal block."""
        size = self.vectorizer.size
        coef = self.priority.coef
        raw = np.asarray(text_matrix @ coef[:size], dtype=np.float32) + np.asarray(
            signal_matrix @ coef[size:], dtype=np.float32
        )
        out: FloatArray = raw + self.priority.intercept
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write the artefact; identical models give byte-identical files."""
        directory.mkdir(parents=True, exist_ok=True)
        ordered = sorted(self.vectorizer.vocabulary.items(), key=lambda kv: kv[1])
        for expected, (name, column) in enumerate(ordered):
            if column != expected or "\n" in name:
                raise ModelError("vocabulary columns must be 0..n-1 without newlines")
        (directory / VOCAB).write_text(
            "".join(name + "\n" for name, _ in ordered), encoding="utf-8"
        )
        arrays = {
            "idf": self.vectorizer.idf,
            "category_coef": self.category.coef,
            "category_intercept": self.category.intercept,
            "priority_coef": self.priority.coef,
            "priority_intercept": self.priority.intercept,
        }
        with zipfile.ZipFile(directory / WEIGHTS, "w") as archive:
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, buffer.getvalue(), compresslevel=9)
        manifest = dict(self.manifest)
        manifest.update(
            {
                "model_version": self.version,
                "feature_version": FEATURE_VERSION,
                "categories": list(self.category.classes),
                "priorities": list(self.priority.classes),
                "signal_features": list(self.signal_names),
                "vocabulary_size": self.vectorizer.size,
            }
        )
        (directory / MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path | None = None) -> TriageModel:
        """Read an artefact written by :meth:`save`."""
        where = directory if directory is not None else default_model_dir()
        try:
            manifest = json.loads((where / MANIFEST).read_text(encoding="utf-8"))
            names = (where / VOCAB).read_text(encoding="utf-8").split("\n")[:-1]
            with np.load(where / WEIGHTS, allow_pickle=False) as weights:
                arrays = {k: np.asarray(weights[k], dtype=np.float32) for k in weights.files}
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load triage model from {where}: {exc}") from exc
        if manifest.get("feature_version") != FEATURE_VERSION:
            raise ModelError(
                f"model at {where} was built for features {manifest.get('feature_version')!r},"
                f" this code extracts {FEATURE_VERSION!r}: retrain (python -m"
                " hotline_classifier.train)"
            )
        vectorizer = Vectorizer({name: i for i, name in enumerate(names)}, arrays["idf"])
        return cls(
            version=str(manifest["model_version"]),
            vectorizer=vectorizer,
            category=LinearHead(
                tuple(manifest["categories"]),
                arrays["category_coef"],
                arrays["category_intercept"],
            ),
            priority=LinearHead(
                tuple(manifest["priorities"]),
                arrays["priority_coef"],
                arrays["priority_intercept"],
            ),
            signal_names=tuple(manifest["signal_features"]),
            manifest=manifest,
        )
