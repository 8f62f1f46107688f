"""The triage engine: text (+ channel, kind, time) → category, priority, location, language.

Pure and synchronous: the faust agent calls :meth:`TriageEngine.triage_many` on a batch, the
CLI does the same on JSON Lines. Statistical models decide category and priority; rules decide
only where they are better than a model (TRIAGE.md's fixed cases: missed calls, texts without
words, P4 for greetings and only for greetings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, cast

import numpy as np

from .analysis import Analyser, Analysis
from .features import signal_features, signal_names
from .gazetteer import Gazetteer
from .labels import Category, District, Language, Priority
from .model import TriageModel
from .priority import DANGER_SIGNALS, decide_priority

# A message is only called a greeting when the model is fairly sure, because dropping an
# incident is the worst error (thresholds chosen on the held-out split; the priority
# thresholds and rules are in priority.py).
GREETING_MIN_PROBABILITY: Final = 0.5
# In a language the model barely knows (Korean, Chinese...), a greeting must be obvious: a
# tourist writing to the police in their own language is usually reporting something.
GREETING_MIN_PROBABILITY_OTHER: Final = 0.85
# A greeting that also names an incident ("Chào anh, … cháy ở chợ!") stays a greeting only when
# the model is very sure or the incident is over and being thanked for.
GREETING_WITH_INCIDENT_MIN_PROBABILITY: Final = 0.9
# Lexicon groups that name an incident clearly enough to doubt a "greeting" verdict.
INCIDENT_CUES: Final = frozenset(
    {
        "traffic",
        "violence",
        "theft",
        "drugs",
        "gambling",
        "fraud",
        "fire_rescue",
        "environment",
        "break_in",
        "explosive",
        "missing_person",
        "impersonation",
    }
)


@dataclass(frozen=True, slots=True)
class TriageResult:
    """The classifier's verdict on one message (fields of TRIAGE.md plus reasons, version)."""

    category: Category
    actionable: bool
    priority: Priority
    location: District | None
    language: Language
    confidence: float
    reasons: tuple[str, ...]
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (``reasons`` as a list)."""
        return {
            "category": self.category,
            "actionable": self.actionable,
            "priority": self.priority,
            "location": self.location,
            "language": self.language,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "model_version": self.model_version,
        }


class TriageEngine:
    """Loaded model + gazetteer + signal detector. Thread-safe: holds no per-call state."""

    def __init__(self, model: TriageModel, gazetteer: Gazetteer) -> None:
        self.model = model
        self.analyser = Analyser(gazetteer)
        categories = model.category.classes
        self._categories = cast(tuple[Category, ...], categories)
        self._priorities = cast(tuple[Priority, ...], model.priority.classes)
        self._greeting = categories.index("greeting")

    @property
    def model_version(self) -> str:
        return self.model.version

    @classmethod
    def load(
        cls, path: str | Path | None = None, gazetteer: str | Path | None = None
    ) -> TriageEngine:
        """Load the model directory (default: packaged artefact) and a gazetteer YAML."""
        model = TriageModel.load(Path(path) if path is not None else None)
        return cls(model, Gazetteer.load(gazetteer))

    # ------------------------------------------------------------------ public API

    def triage(
        self,
        text: str | None,
        channel: str | None = None,
        kind: str | None = None,
        received_at: datetime | None = None,
    ) -> TriageResult:
        """Triage one message (see :meth:`triage_many`)."""
        return self.triage_many([text], [channel], [kind], [received_at])[0]

    def triage_many(
        self,
        texts: Sequence[str | None],
        channels: Sequence[str | None] | None = None,
        kinds: Sequence[str | None] | None = None,
        received_ats: Sequence[datetime | None] | None = None,
    ) -> list[TriageResult]:
        """Triage a batch; the optional sequences align with ``texts``.

        ``kind`` is the inbound kind (``call_missed`` for a missed call); a missing channel and
        kind (None) mean an ordinary message, so empty text is a greeting unless the channel or
        kind is a call's. ``received_at`` lets relative times like "sáng nay" be read against
        the time the message arrived.
        """
        n = len(texts)
        channels = channels if channels is not None else [None] * n
        kinds = kinds if kinds is not None else [None] * n
        received_ats = received_ats if received_ats is not None else [None] * n
        if not len(channels) == len(kinds) == len(received_ats) == n:
            raise ValueError("texts, channels, kinds and received_ats must have equal lengths")
        prepared = [
            self.analyser.analyse(t, c, k, r)
            for t, c, k, r in zip(texts, channels, kinds, received_ats, strict=True)
        ]
        todo = [i for i, p in enumerate(prepared) if p.rule is None]
        results: list[TriageResult | None] = [None] * n
        for i, p in enumerate(prepared):
            if p.rule is not None:
                results[i] = self._rule_result(p)
        if todo:
            for i, result in zip(
                todo, self._model_results([prepared[i] for i in todo]), strict=True
            ):
                results[i] = result
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ internals

    def _rule_result(self, p: Analysis) -> TriageResult:
        assert p.rule is not None
        category, priority, why = p.rule
        return TriageResult(
            category=category,
            actionable=category != "greeting",
            priority=priority,
            location=p.location.district,
            language=p.norm.language,
            confidence=1.0,
            reasons=(f"rule: {why}", *p.location.reasons[:1]),
            model_version=self.model.version,
        )

    def _model_results(self, batch: Sequence[Analysis]) -> list[TriageResult]:
        model = self.model
        cat_text, pri_text = model.table.scores([p.feature_parts() for p in batch])
        cat_probs = model.category.probabilities(cat_text + model.category.intercept)
        chosen: list[int] = []
        for row, p in zip(cat_probs, batch, strict=True):
            best = int(np.argmax(row))
            floor = (
                GREETING_MIN_PROBABILITY_OTHER
                if p.norm.language == "other"
                else GREETING_MIN_PROBABILITY
            )
            if best == self._greeting and self._names_incident(p):
                floor = max(floor, GREETING_WITH_INCIDENT_MIN_PROBABILITY)
            if best == self._greeting and row[best] < floor:
                masked = row.copy()
                masked[self._greeting] = -1.0
                best = int(np.argmax(masked))
            chosen.append(best)
        categories = [self._categories[c] for c in chosen]
        signal_rows = [
            signal_features(cat, signal_names(p.signals))
            for cat, p in zip(categories, batch, strict=True)
        ]
        pri_probs = model.priority.probabilities(
            model.priority_scores(pri_text, model.signal_matrix(signal_rows))
        )
        out: list[TriageResult] = []
        for p, category, c_index, c_row, p_row in zip(
            batch, categories, chosen, cat_probs, pri_probs, strict=True
        ):
            priority, priority_reasons = decide_priority(
                category,
                dict(zip(self._priorities, map(float, p_row), strict=True)),
                p.signals,
                p.lexicon,
            )
            reasons = [f"category: {category} ({float(c_row[c_index]):.2f})"]
            reasons.extend(priority_reasons)
            reasons.extend(p.extra_reasons)
            reasons.extend(p.location.reasons)
            confidence = float(c_row[c_index])
            out.append(
                TriageResult(
                    category=category,
                    actionable=category != "greeting",
                    priority=priority,
                    location=p.location.district,
                    language=p.norm.language,
                    confidence=round(confidence, 4) if math.isfinite(confidence) else 0.0,
                    reasons=tuple(reasons),
                    model_version=model.version,
                )
            )
        return out

    @staticmethod
    def _names_incident(p: Analysis) -> bool:
        """The text names a danger, or an incident without thanking anyone, and does not say
        it is over ("đã bắt được rồi, cảm ơn anh" is a greeting)."""
        if p.lexicon.has("resolved") or p.signals.has("safe"):
            return False
        if any(name in DANGER_SIGNALS for name in p.signals.found):
            return True
        if p.lexicon.has("thanks"):
            return False
        return any(name in INCIDENT_CUES for name in p.lexicon.found)
