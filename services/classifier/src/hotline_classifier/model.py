"""The trained artefact: a tf-idf vocabulary plus two linear heads, evaluated with numpy.

Training uses scikit-learn; the artefact keeps only what inference needs (feature names, idf
weights, coefficients), so loading is a file read, and scoring sums precomputed per-word rows
(:class:`ScoreTable`). Files in the model directory:

* ``manifest.json`` — version, class lists, signal feature names, parameters;
* ``vocab.txt`` — one feature string per line (line number = column);
* ``weights.npz`` — ``idf``, ``category_coef``, ``category_intercept``, ``priority_coef``,
  ``priority_intercept``, written with fixed zip timestamps so a rebuild is byte-identical.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import sparse

from .features import FEATURE_VERSION, Parts, Word, bigram_features, word_features

FloatArray = npt.NDArray[np.float32]

MANIFEST: Final = "manifest.json"
VOCAB: Final = "vocab.txt"
WEIGHTS: Final = "weights.npz"
_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)
# Words whose character n-gram columns are memoised at inference (a few MB at most).
_CACHE_LIMIT: Final = 200_000


class ModelError(RuntimeError):
    """The model directory is missing, incomplete or built for other features."""


def default_model_dir() -> Path:
    """The artefact shipped inside the package."""
    return Path(__file__).resolve().parent / "model"


@dataclass(slots=True)
class Vectorizer:
    """tf-idf over a fixed vocabulary where every occurrence counts.

    A document is ``x = Σ_occurrences idf[c]·e_c / sqrt(Σ_occurrences idf[c]²)``: raw term
    frequency, scaled by the root of the summed squared idf of its occurrences. Unlike the
    usual L2 norm this scale is additive over words, so inference can precompute every word's
    contribution once (:class:`ScoreTable`) instead of rebuilding a sparse matrix per batch.
    """

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
        """Documents (lists of feature strings) → CSR matrix of weighted rows."""
        get = self.vocabulary.get
        found = [[j for j in map(get, features) if j is not None] for features in documents]
        lengths = np.array([len(f) for f in found], dtype=np.int64)
        cols = np.fromiter((j for f in found for j in f), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(documents), dtype=np.int64), lengths)
        data = self.idf[cols].astype(np.float64)
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=len(documents)))
        norms[norms == 0.0] = 1.0
        data = (data / norms[rows]).astype(np.float32)
        # Repeated (row, column) pairs are summed by the COO → CSR conversion.
        return sparse.csr_matrix((data, (rows, cols)), shape=(len(documents), self.size))


class ScoreTable:
    """Each feature's and each word's precomputed share of both heads' text scores.

    Row layout: category scores (one per class), priority text-block scores (one per class),
    then the squared idf that feeds the document scale. A document's scores are the sum of
    its rows, divided by the root of the last column: exactly ``Vectorizer.transform(doc) @
    coef``, computed without building the sparse matrix. Words' character n-gram rows are
    memoised, and so are bigrams' (bounded); a lock guards the table's growth when several
    threads share an engine.
    """

    def __init__(
        self, vectorizer: Vectorizer, category_coef: FloatArray, priority_coef: FloatArray
    ):
        idf = vectorizer.idf.astype(np.float64)[:, None]
        weights = np.hstack([category_coef * idf, priority_coef * idf, idf * idf])
        # Row 0 is the zero row of unknown features (and the first row of every document, so
        # that no document has an empty segment).
        self._static = np.vstack([np.zeros((1, weights.shape[1])), weights])
        self._vocabulary = vectorizer.vocabulary
        # feature → row of the static table (its column + 1; row 0 is the unknown feature).
        self._columns = {name: column + 1 for name, column in vectorizer.vocabulary.items()}
        self._width = weights.shape[1]
        self._categories = category_coef.shape[1]
        self._cached: dict[Word | str, int] = {}
        self._rows = np.zeros((1024, self._width))
        self._lock = threading.Lock()

    def _vector(self, key: Word | str) -> npt.NDArray[np.float64]:
        """Summed static rows of a word's (``(word, plain)``) or bigram's features."""
        features = bigram_features(key) if isinstance(key, str) else word_features(*key)
        get = self._vocabulary.get
        columns = [j + 1 for j in map(get, features) if j is not None]
        vector: npt.NDArray[np.float64] = self._static[columns].sum(axis=0)
        return vector

    def _row(self, key: Word | str) -> int | None:
        """Cached row of a word or bigram, made on first use; None once the cache is full
        (rows are never recycled, so concurrent readers can never see a row change)."""
        with self._lock:
            row = self._cached.get(key)
            if row is not None:
                return row
            if len(self._cached) >= _CACHE_LIMIT:
                return None
            row = len(self._cached) + 1
            if row >= len(self._rows):
                grown = np.zeros((2 * len(self._rows), self._width))
                grown[: len(self._rows)] = self._rows
                self._rows = grown
            self._rows[row] = self._vector(key)
            self._cached[key] = row
            return row

    def scores(self, parts: Sequence[Parts]) -> tuple[FloatArray, FloatArray]:
        """(category scores, priority text-block scores) without intercepts, one row per
        document given as ``features.feature_parts`` output."""
        if not parts:
            empty = np.zeros((0, 0), dtype=np.float32)
            return empty, empty
        get = self._columns.get
        cached = self._cached.get
        static_ids: list[int] = []
        dynamic_ids: list[int] = []
        static_starts: list[int] = []
        dynamic_starts: list[int] = []
        uncached: list[tuple[int, Word | str]] = []
        for doc, (features, words, bigrams) in enumerate(parts):
            static_starts.append(len(static_ids))
            static_ids.append(0)
            static_ids.extend([get(f, 0) for f in features])
            dynamic_starts.append(len(dynamic_ids))
            dynamic_ids.append(0)
            keys: list[Word | str] = [*words, *bigrams]
            for key in keys:
                row = cached(key)
                if row is None:
                    row = self._row(key)
                    if row is None:
                        uncached.append((doc, key))
                        continue
                dynamic_ids.append(row)
        totals = np.add.reduceat(self._static[static_ids], static_starts) + np.add.reduceat(
            self._rows[dynamic_ids], dynamic_starts
        )
        for doc, key in uncached:
            totals[doc] += self._vector(key)
        scale = np.sqrt(totals[:, -1])
        scale[scale == 0.0] = 1.0
        scaled = totals[:, :-1] / scale[:, None]
        k = self._categories
        return scaled[:, :k].astype(np.float32), scaled[:, k:].astype(np.float32)


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
    _table: ScoreTable | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._signal_index = {name: i for i, name in enumerate(self.signal_names)}
        self._table: ScoreTable | None = None

    @property
    def table(self) -> ScoreTable:
        """Precomputed text scores of both heads (built on first use)."""
        if self._table is None:
            size = self.vectorizer.size
            self._table = ScoreTable(self.vectorizer, self.category.coef, self.priority.coef[:size])
        return self._table

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
        self, text_scores: FloatArray, signal_matrix: sparse.csr_matrix
    ) -> FloatArray:
        """Raw priority scores: text-block scores (see :class:`ScoreTable`) plus the signal
        block."""
        coef = self.priority.coef[self.vectorizer.size :]
        raw = text_scores + np.asarray(signal_matrix @ coef, dtype=np.float32)
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
