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

# Diacritic-free negation words; "chua" also spells "chùa" (pagoda) but never right before
# a danger word.
NEGATORS: Final = frozenset(
    {
        "khong",
        "chua",
        "ko",
        "k",
        "kh",
        "hok",
        "hk",
        "chang",
        "cha",
        "no",
        "not",
        "without",
        "never",
        "none",
        "nobody",
        "hong",
        "dung",
        "khoi",
    }
)
NEGATION_WINDOW: Final = 2


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
        for match in self._matcher.find(phrases):
            name = match.pattern.payload
            if name in self._negatable:
                before = phrases[match.phrase][max(0, match.start - NEGATION_WINDOW) : match.start]
                if any(t.ascii in NEGATORS for t in before):
                    negated.setdefault(name, match.pattern.name)
                    continue
            found.setdefault(name, match.pattern.name)
        return Cues(found, {k: v for k, v in negated.items() if k not in found})
