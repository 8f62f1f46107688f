"""Detection of cue phrases (urgency/time signals, category lexicon), negation-aware.

A cue table maps a cue name to phrases; phrases are matched with
:class:`~hotline_classifier.phrases.PhraseMatcher` (diacritics optional unless the phrase is
written with a leading "=", never across punctuation). A cue preceded by a negation
("không ai bị thương", "chưa thấy cầm dao", "no one was hurt") is reported as *negated*
instead of found, because a negated danger word is evidence of calm, not of danger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from .phrases import Phrase, PhraseMatcher

# Negation words as written (folded). Diacritic-free "chua" could also be "chùa" (pagoda),
# but never right before a danger word; "dung" is left out because it is also "dùng" (use).
NEGATORS: Final = frozenset(
    {
        "không",
        "khong",
        "chưa",
        "chua",
        "chẳng",
        "chả",
        "đừng",
        "ko",
        "k",
        "kh",
        "hok",
        "hk",
        "no",
        "not",
        "without",
        "never",
        "none",
        "nobody",
    }
)
NEGATION_WINDOW: Final = 3


@dataclass(frozen=True, slots=True)
class Cues:
    """Cues found in one message: name → first phrase that raised it."""

    found: dict[str, str]
    negated: dict[str, str]

    def has(self, name: str) -> bool:
        return name in self.found

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.found)


class CueDetector:
    """Finds the cues of a table in tokenised phrases."""

    def __init__(
        self, table: Mapping[str, Sequence[str]], negatable: frozenset[str] | None = None
    ) -> None:
        self._matcher: PhraseMatcher[str] = PhraseMatcher(
            (phrase, name) for name, items in table.items() for phrase in items
        )
        self._negatable = frozenset(table) if negatable is None else negatable

    def detect(self, phrases: Sequence[Phrase]) -> Cues:
        """Cues found and cues negated; a cue both found and negated counts as found."""
        found: dict[str, str] = {}
        negated: dict[str, str] = {}
        # Longest matches first, so that "dao" inside a negated "chưa thấy cầm dao" is
        # negated with it.
        matches = sorted(self._matcher.find(phrases), key=lambda m: (m.start - m.end, m.phrase))
        negated_spans: list[tuple[int, int, int]] = []
        for match in matches:
            name = match.pattern.payload
            if name in self._negatable:
                before = phrases[match.phrase][max(0, match.start - NEGATION_WINDOW) : match.start]
                inside = any(
                    p == match.phrase and s <= match.start and match.end <= e
                    for p, s, e in negated_spans
                )
                if inside or any(t.text in NEGATORS for t in before):
                    negated_spans.append((match.phrase, match.start, match.end))
                    negated.setdefault(name, match.pattern.name)
                    continue
            found.setdefault(name, match.pattern.name)
        return Cues(found, {k: v for k, v in negated.items() if k not in found})
