"""Text analysis before any model runs: normalisation, place, cues, and the fixed rules.

Shared by the engine and by training, so the model is trained on exactly what it will see.
The rules cover only what TRIAGE.md fixes outright: a missed call or an empty call item is
``other``/P2 (somebody must call back), a text without words (emoji, sticker, ".", empty text
that is not a call) or made of filler words only ("ok", "alo", "test") is a greeting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from .cues import CueDetector, Cues
from .elapsed import hide_elapsed, read_elapsed, with_elapsed
from .features import Parts, feature_parts, text_features
from .gazetteer import Gazetteer, Location
from .labels import Category, Priority
from .lexicon import CATEGORY_CUES
from .normalize import ABBREVIATIONS, MAX_CHARS, Normalized, normalize
from .phrases import expand_phrases, mask_spans, split_phrases
from .signals import signal_table

# A call that reached nobody and left no words: someone must call back soon (TRIAGE.md).
MISSED_CALL_KINDS: Final = frozenset({"call_missed"})
# Channels and kinds where an empty item is a call, not an empty chat message. An item that
# says neither (no channel, no kind) is an ordinary message: empty text is then a greeting.
CALL_CHANNELS: Final = frozenset({"voice", "desk", "call", "phone"})
CALL_KINDS: Final = frozenset({"call_answered", "voicemail", "call_summary"})
# Texts made only of these words carry no report ("ok", "alo", "dạ vâng ạ", "test").
FILLER_WORDS: Final = frozenset(
    [
        "ok",
        "oke",
        "okay",
        "okie",
        "okê",
        "ừ",
        "ừm",
        "ừa",
        "uh",
        "um",
        "dạ",
        "vâng",
        "da",
        "vang",
        "ạ",
        "a",
        "alo",
        "test",
        "thử",
        "hi",
        "hello",
        "chào",
        "anh",
        "em",
        "chị",
        "hihi",
        "haha",
        "hehe",
        "kk",
        "kkk",
        "hì",
        "yes",
        "yeah",
        "ờ",
        "nha",
        "nhé",
        "hí",
    ]
)
FILLER_MAX_WORDS: Final = 4


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the engine derives from a text before the models run."""

    norm: Normalized
    signals: Cues
    lexicon: Cues
    location: Location
    rule: tuple[Category, Priority, str] | None
    extra_reasons: tuple[str, ...]

    def features(self) -> list[str]:
        """Text-block features (see :mod:`hotline_classifier.features`)."""
        return text_features(self.norm, self.lexicon, self.signals)

    def feature_parts(self) -> Parts:
        """:meth:`features` split for cached inference (see ``model.ScoreTable``)."""
        return feature_parts(self.norm, self.lexicon, self.signals)


def _is_filler(norm: Normalized) -> bool:
    words = norm.folded.replace("?", " ").replace("!", " ").replace(".", " ").split()
    words = [w.strip(",;:~-") for w in words]
    words = [w for w in words if w]
    return 0 < len(words) <= FILLER_MAX_WORDS and all(w in FILLER_WORDS for w in words)


def _time_hint(signals: Cues, received_at: datetime | None) -> tuple[set[str], list[str]]:
    """Signals implied by the receiving time ("sáng nay" read in the afternoon is past)."""
    if received_at is None or not signals.has("today_earlier"):
        return set(), []
    if received_at.hour >= 12:
        phrase = signals.found["today_earlier"]
        return {"past"}, [f"time: '{phrase}' → past (received {received_at:%H:%M})"]
    return set(), []


class Analyser:
    """Gazetteer and cue detectors; stateless per call, so safe to share between threads."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer
        # Urgency/time signals and the category lexicon, matched in one pass.
        self.cue_detector = CueDetector(signal_table(), (CATEGORY_CUES, None))

    def analyse(
        self,
        text: str | None,
        channel: str | None = None,
        kind: str | None = None,
        received_at: datetime | None = None,
    ) -> Analysis:
        """Normalise, locate and find cues; decide by rule when TRIAGE.md fixes the answer."""
        norm = normalize(text, MAX_CHARS)
        phrases = split_phrases(norm.folded)
        places = self.gazetteer.matches(phrases)
        location = self.gazetteer.locate(phrases, places)
        # Place names must not count as words: "Phú Mậu" is not "máu", "Thượng Lộ" not a road.
        masked = mask_spans(phrases, [(m.phrase, m.start, m.end) for m in places])
        if norm.language == "vi":
            masked = expand_phrases(masked, ABBREVIATIONS)
        # Quantities of time ago ("cách đây 3 tiếng", "2 hours ago") are read first, and their
        # words hidden from the fixed time phrases ("cách đây" alone says "just now").
        elapsed = read_elapsed(masked)
        signals, lexicon = self.cue_detector.detect_all(hide_elapsed(masked, elapsed))
        signals = with_elapsed(signals, elapsed)
        extra, extra_reasons = _time_hint(signals, received_at)
        if extra:
            signals = Cues(
                {**signals.found, **{s: "(clock)" for s in extra}},
                signals.negated,
                signals.where,
                signals.notes,
            )
        rule: tuple[Category, Priority, str] | None = None
        if kind in MISSED_CALL_KINDS and not norm.has_words:
            rule = ("other", "P2", "missed call: call back soon")
        elif not norm.has_words:
            if norm.sticker:
                rule = ("greeting", "P4", "sticker only")
            elif norm.emoji_only:
                rule = ("greeting", "P4", "emoji only")
            elif norm.folded:
                rule = ("greeting", "P4", "no words")
            elif channel in CALL_CHANNELS or kind in CALL_KINDS:
                # An empty call item is a call nobody transcribed: the caller may be in danger.
                rule = ("other", "P2", "call without words: call back soon")
            else:
                rule = ("greeting", "P4", "empty message")
        elif _is_filler(norm):
            rule = ("greeting", "P4", f"filler only: '{norm.folded[:30]}'")
        return Analysis(norm, signals, lexicon, location, rule, tuple(extra_reasons))
