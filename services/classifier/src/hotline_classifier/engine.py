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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, cast

import numpy as np

from .analysis import Analyser, Analysis
from .features import signal_features, signal_names
from .gazetteer import Gazetteer
from .labels import Category, District, Language, Priority
from .model import TriageModel, message_features
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


ItemKey = tuple[str | None, str | None, str | None, datetime | None, timedelta | None]
"""What a triage depends on: text, channel, kind, received_at and its UTC offset."""


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
    locality: str | None = None
    """The gazetteer place inside ``location`` that decided it (a commune, a landmark)."""

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
            "locality": self.locality,
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
        # Identical items (a message sent twice, a burst of "alo") are analysed and scored
        # once: the result is a pure function of the item. Equal aware times can differ in
        # their local hour, so the UTC offset is part of the key.
        first: dict[ItemKey, int] = {}
        slots = [
            first.setdefault((t, c, k, r, r.utcoffset() if r is not None else None), len(first))
            for t, c, k, r in zip(texts, channels, kinds, received_ats, strict=True)
        ]
        prepared = [self.analyser.analyse(t, c, k, r) for t, c, k, r, _ in first]
        to_score = [p for p in prepared if p.rule is None]
        scored = iter(self._model_results(to_score) if to_score else ())
        unique = [self._rule_result(p) if p.rule is not None else next(scored) for p in prepared]
        return [unique[slot] for slot in slots]

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
            locality=p.location.locality,
        )

    def _model_results(self, batch: Sequence[Analysis]) -> list[TriageResult]:
        model = self.model
        cat_text, pri_text = model.table.scores(
            [
                (message_features(p.norm, p.lexicon, p.signals), p.norm.text, p.norm.ascii)
                for p in batch
            ]
        )
        cat_probs = model.category.probabilities(cat_text + model.category.intercept)
        chosen: list[int] = cat_probs.argmax(axis=1).tolist()
        greeting = self._greeting
        for i, p in enumerate(batch):
            if chosen[i] != greeting:
                continue
            row = cat_probs[i]
            floor = (
                GREETING_MIN_PROBABILITY_OTHER
                if p.norm.language == "other"
                else GREETING_MIN_PROBABILITY
            )
            if self._names_incident(p):
                floor = max(floor, GREETING_WITH_INCIDENT_MIN_PROBABILITY)
            if row[greeting] < floor:
                masked = row.copy()
                masked[greeting] = -1.0
                chosen[i] = int(np.argmax(masked))
        categories = [self._categories[c] for c in chosen]
        signal_rows = [
            signal_features(cat, signal_names(p.signals))
            for cat, p in zip(categories, batch, strict=True)
        ]
        pri_probs = model.priority.probabilities(
            model.priority_scores(pri_text, model.signal_scores(signal_rows))
        )
        # Python floats once per batch (the same values ``float()`` gives element by element).
        cat_rows: list[list[float]] = cat_probs.tolist()
        pri_rows: list[list[float]] = pri_probs.tolist()
        priorities = self._priorities
        version = model.version
        out: list[TriageResult] = []
        for p, category, c_index, c_row, p_row in zip(
            batch, categories, chosen, cat_rows, pri_rows, strict=True
        ):
            priority, priority_reasons = decide_priority(
                category, dict(zip(priorities, p_row, strict=True)), p.signals, p.lexicon
            )
            confidence = c_row[c_index]
            reasons = [f"category: {category} ({confidence:.2f})"]
            reasons.extend(priority_reasons)
            reasons.extend(p.extra_reasons)
            reasons.extend(p.location.reasons)
            out.append(
                TriageResult(
                    category=category,
                    actionable=category != "greeting",
                    priority=priority,
                    location=p.location.district,
                    language=p.norm.language,
                    confidence=round(confidence, 4) if math.isfinite(confidence) else 0.0,
                    reasons=tuple(reasons),
                    model_version=version,
                    locality=p.location.locality,
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
