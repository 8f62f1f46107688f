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
from itertools import pairwise, repeat
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
from scipy import sparse

from .cues import Cues
from .features import CUE_REPEAT, FEATURE_VERSION, Word, bigram_features, word_features
from .normalize import Normalized

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


TextDoc = tuple[list[str], str, str]
"""A document for :meth:`ScoreTable.scores`: its message-level features
(:func:`message_features`), its model text (``Normalized.text``: words separated by single
spaces) and that text without diacritics (``Normalized.ascii``)."""


def message_features(norm: Normalized, lexicon: Cues, signals: Cues) -> list[str]:
    """The message-level features of ``features.feature_parts`` (shape, lexicon, signals),
    without splitting the text into word and bigram features.

    A copy, because features.py cannot change without changing model_version
    (``train.digest`` hashes the feature modules' source): fold it back into
    ``feature_parts`` at the next retrain. tests/test_engine.py checks that the two agree.
    """
    # ``text`` is words joined by single spaces, so this is ``len(norm.text.split())``.
    n = norm.text.count(" ") + 1 if norm.text else 0
    size = 0 if n == 0 else 1 if n <= 3 else 2 if n <= 8 else 3 if n <= 20 else 4
    out = [f"f:len{size}"]
    if norm.has_emoji:
        out.append("f:emoji")
    if norm.language != "vi":
        out.append("f:lang_" + norm.language)
    out.extend(["k:" + name for name in lexicon.found for _ in range(CUE_REPEAT)])
    out.extend("k:not_" + name for name in lexicon.negated)
    out.extend(["u:" + name for name in signals.found for _ in range(CUE_REPEAT)])
    if signals.negated:
        out.append("u:negated")
    return out


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
        # A word (its diacritic-free twin follows from it) or a "first second" bigram → its
        # row in ``_rows``. Words never contain a space, so the two kinds cannot collide.
        self._cached: dict[str, int] = {}
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
        name = key if isinstance(key, str) else key[0]
        with self._lock:
            row = self._cached.get(name)
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
            self._cached[name] = row
            return row

    def scores(self, docs: Sequence[TextDoc]) -> tuple[FloatArray, FloatArray]:
        """(category scores, priority text-block scores) without intercepts, one row per
        document: its message-level features (:func:`message_features`) and its words
        (``Normalized.text`` and ``.ascii``).

        The batch is assembled with C-level ``map`` look-ups; Python loops over words only
        run for words and bigrams seen for the first time.
        """
        if not docs:
            empty = np.zeros((0, 0), dtype=np.float32)
            return empty, empty
        get = self._columns.get
        cached = self._cached.get
        static_ids: list[int] = []
        dynamic_ids: list[int] = []
        static_starts: list[int] = []
        dynamic_starts: list[int] = []
        uncached: list[tuple[int, Word | str]] = []
        for doc, (features, text, plain) in enumerate(docs):
            static_starts.append(len(static_ids))
            static_ids.append(0)
            static_ids.extend(map(get, features, repeat(0)))
            words = text.split()
            # Words first, then bigrams: the order (and so the float sums) of feature_parts.
            keys = words + [f"{a} {b}" for a, b in pairwise(words)]
            dynamic_starts.append(len(dynamic_ids))
            dynamic_ids.append(0)
            rows = list(map(cached, keys))
            if None in rows:
                dynamic_ids.extend(self._fill(doc, keys, len(words), plain, rows, uncached))
            else:
                dynamic_ids.extend(cast(list[int], rows))
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

    def _fill(
        self,
        doc: int,
        keys: list[str],
        n_words: int,
        plain: str,
        rows: list[int | None],
        uncached: list[tuple[int, Word | str]],
    ) -> list[int]:
        """Rows of a document with first-seen words or bigrams: made (and cached) in text
        order, or queued in ``uncached`` once the cache is full."""
        plains = plain.split()
        out: list[int] = []
        for i, (key, row) in enumerate(zip(keys, rows, strict=True)):
            if row is None:
                item: Word | str = (key, plains[i]) if i < n_words else key
                row = self._row(item)
                if row is None:
                    uncached.append((doc, item))
                    continue
            out.append(row)
        return out


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
    _signal_coef: FloatArray = field(init=False, repr=False)
    _table: ScoreTable | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._signal_index = {name: i for i, name in enumerate(self.signal_names)}
        # The signal block's coefficients plus a zero row (padding in :meth:`signal_scores`).
        block = self.priority.coef[self.vectorizer.size :]
        self._signal_coef = np.vstack([block, np.zeros((1, block.shape[1]), dtype=block.dtype)])
        self._table: ScoreTable | None = None

    @property
    def table(self) -> ScoreTable:
        """Precomputed text scores of both heads (built on first use)."""
        if self._table is None:
            size = self.vectorizer.size
            self._table = ScoreTable(self.vectorizer, self.category.coef, self.priority.coef[:size])
        return self._table

    def signal_scores(self, rows: Sequence[Sequence[str]]) -> FloatArray:
        """The signal block's share of the raw priority scores, given each document's active
        signal features (``features.signal_features``).

        Bit for bit what the binary CSR matrix product computed before (float32, every
        document's rows added to zero one by one in column order), without building a
        sparse matrix per batch.
        """
        index = self._signal_index
        coef = self._signal_coef
        padding = len(coef) - 1  # the zero row: adding it changes nothing
        columns = [sorted({index[a] for a in active if a in index}) for active in rows]
        width = max(map(len, columns), default=0)
        padded = np.array(
            [c + [padding] * (width - len(c)) for c in columns], dtype=np.intp
        ).reshape(len(rows), width)
        out: FloatArray = np.zeros((len(rows), coef.shape[1]), dtype=np.float32)
        for j in range(width):
            out += coef[padded[:, j]]
        return out

    def priority_scores(self, text_scores: FloatArray, signal_scores: FloatArray) -> FloatArray:
        """Raw priority scores: text-block scores (see :class:`ScoreTable`) plus the signal
        block (:meth:`signal_scores`)."""
        raw = text_scores + signal_scores
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
