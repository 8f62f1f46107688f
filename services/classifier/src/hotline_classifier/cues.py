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
        "suýt",
        "suyt",
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
        """Cues found and cues negated; a cue both found and negated counts as found.

        Table entries named with a leading "_" are *blockers*: phrases whose words must not
        raise any cue ("chết máy" is a stalled engine, "pháo nổ" fireworks, "dễ cháy" a risk).
        """
        found: dict[str, str] = {}
        negated: dict[str, str] = {}
        # Longest matches first, so that "dao" inside a negated "chưa thấy cầm dao" is
        # negated with it, and words inside a blocker are skipped.
        matches = sorted(self._matcher.find(phrases), key=lambda m: (m.start - m.end, m.phrase))
        negated_spans: list[tuple[int, int, int]] = []
        blocked_spans: list[tuple[int, int, int]] = []

        def within(spans: list[tuple[int, int, int]], p: int, start: int, end: int) -> bool:
            return any(q == p and s <= start and end <= e for q, s, e in spans)

        for match in matches:
            name = match.pattern.payload
            if name.startswith("_"):
                blocked_spans.append((match.phrase, match.start, match.end))
                continue
            if within(blocked_spans, match.phrase, match.start, match.end):
                continue
            if name in self._negatable:
                before = phrases[match.phrase][max(0, match.start - NEGATION_WINDOW) : match.start]
                inside = within(negated_spans, match.phrase, match.start, match.end)
                if inside or any(t.text in NEGATORS for t in before):
                    negated_spans.append((match.phrase, match.start, match.end))
                    negated.setdefault(name, match.pattern.name)
                    continue
            found.setdefault(name, match.pattern.name)
        return Cues(found, {k: v for k, v in negated.items() if k not in found})
