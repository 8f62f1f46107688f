"""Detection of cue phrases (urgency/time signals, category lexicon), negation-aware.

A cue table maps a cue name to phrases; phrases are matched with
:class:`~hotline_classifier.phrases.PhraseMatcher` (diacritics optional unless the phrase is
written with a leading "=", never across punctuation). A cue preceded by a negation
("không ai bị thương", "chưa thấy cầm dao", "no one was hurt") is reported as *negated*
instead of found, because a negated danger word is evidence of calm, not of danger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from .phrases import Phrase, PhraseMatcher

# Negation words as written (folded). Diacritic-free "chua" could also be "chùa" (pagoda),
# but never right before a danger word; "dung" is left out because it is also "dùng" (use).
# "Nearly", "about to", "afraid of" also turn a danger word into a risk ("sắp đâm vào").
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
        "sắp",
        "sợ",
        "lo",
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
    """Cues found in one message: name → a phrase that raised it (the longest first)."""

    found: dict[str, str]
    negated: dict[str, str]
    where: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Indices of the phrases each found cue occurs in (empty: unknown)."""
    notes: dict[str, str] = field(default_factory=dict)
    """How a found cue was read, when there is more to say than its phrase (a reason line:
    "time: 'cách đây 3 tiếng' → 3 h ago: past", see :mod:`hotline_classifier.elapsed`)."""

    def has(self, name: str) -> bool:
        return name in self.found

    def near(self, first: str, second: str, distance: int) -> bool:
        """Both cues found, in phrases at most ``distance`` apart (True when unknown)."""
        if first not in self.found or second not in self.found:
            return False
        a, b = self.where.get(first), self.where.get(second)
        if not a or not b:
            return True
        return any(abs(i - j) <= distance for i in a for j in b)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.found)


CueTable = Mapping[str, Sequence[str]]


class CueDetector:
    """Finds the cues of one or more tables in tokenised phrases, in a single pass.

    Each table comes with the set of its cue names that a negation can flip (None: all).
    """

    def __init__(self, *tables: tuple[CueTable, frozenset[str] | None]) -> None:
        entries: list[tuple[str, tuple[int, str]]] = []
        negatable: set[tuple[int, str]] = set()
        for number, (table, flips) in enumerate(tables):
            for name, items in table.items():
                entries.extend((phrase, (number, name)) for phrase in items)
            negatable.update((number, name) for name in (table if flips is None else flips))
        self._matcher: PhraseMatcher[tuple[int, str]] = PhraseMatcher(entries)
        self._negatable = frozenset(negatable)
        self._tables = len(tables)

    def detect(self, phrases: Sequence[Phrase]) -> Cues:
        """Cues of the first table (see :meth:`detect_all`)."""
        return self.detect_all(phrases)[0]

    def detect_all(self, phrases: Sequence[Phrase]) -> list[Cues]:
        """Per table: cues found and cues negated (a cue both found and negated is found).

        Table entries named with a leading "_" are *blockers* of their table: phrases whose
        words must not raise a cue ("chết máy" is a stalled engine, "pháo nổ" fireworks).
        """
        found: list[dict[str, str]] = [{} for _ in range(self._tables)]
        where: list[dict[str, list[int]]] = [{} for _ in range(self._tables)]
        negated: list[dict[str, str]] = [{} for _ in range(self._tables)]
        # Longest matches first, so that "dao" inside a negated "chưa thấy cầm dao" is
        # negated with it, and words inside a blocker are skipped.
        matches = sorted(self._matcher.find(phrases), key=lambda m: (m.start - m.end, m.phrase))
        negated_spans: list[tuple[int, int, int, int]] = []
        blocked_spans: list[tuple[int, int, int, int]] = []

        def within(spans: list[tuple[int, int, int, int]], t: int, p: int, a: int, b: int) -> bool:
            return any(u == t and q == p and s <= a and b <= e for u, q, s, e in spans)

        for match in matches:
            table, name = match.pattern.payload
            span = (table, match.phrase, match.start, match.end)
            if name.startswith("_"):
                blocked_spans.append(span)
                continue
            if blocked_spans and within(blocked_spans, *span):
                continue
            if (table, name) in self._negatable:
                before = phrases[match.phrase][max(0, match.start - NEGATION_WINDOW) : match.start]
                inside = bool(negated_spans) and within(negated_spans, *span)
                if inside or any(t.text in NEGATORS for t in before):
                    negated_spans.append(span)
                    negated[table].setdefault(name, match.pattern.name)
                    continue
            found[table].setdefault(name, match.pattern.name)
            where[table].setdefault(name, []).append(match.phrase)
        return [
            Cues(
                f,
                {k: v for k, v in n.items() if k not in f},
                {k: tuple(sorted(set(v))) for k, v in w.items()},
            )
            for f, n, w in zip(found, negated, where, strict=True)
        ]
