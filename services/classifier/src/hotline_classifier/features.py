"""Feature extraction shared by training and inference (so both see exactly the same features).

Text features are strings with a block prefix:

* ``w:`` word unigrams and bigrams of the normalised text (with diacritics),
* ``a:`` the same on the diacritic-free form,
* ``c:`` character n-grams (2-5, within word boundaries) of the diacritic-free form,
* ``d:`` character n-grams of words that carry diacritics,
* ``f:`` a few shape flags (emoji, length, language),
* ``k:`` category lexicon cues (``k:theft``, ``k:not_violence`` when negated),
* ``u:`` urgency/time signals.

The priority model adds the urgency/time signals, alone and crossed with the category.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import Final

from .cues import Cues
from .labels import CATEGORIES, Category
from .normalize import Normalized, strip_diacritics
from .signals import SIGNALS

FEATURE_VERSION: Final = "f10"
"""Bumped whenever extraction changes, so an artefact never meets features it was not built on."""

CUE_REPEAT: Final = 3
CHAR_MIN: Final = 2
CHAR_MAX: Final = 5
_MARKS: Final = frozenset({"?", "!"})


def word_char_grams(word: str, plain: str) -> list[str]:
    """Character n-grams of one word: ``c:`` on its diacritic-free form, ``d:`` on the word
    itself when it has diacritics (within word boundaries, padded with a space)."""
    out: list[str] = []
    for prefix, form in (("c:", plain), ("d:", word)):
        if prefix == "d:" and word == plain:
            break
        padded = f" {form} "
        size = len(padded)
        for n in range(CHAR_MIN, min(CHAR_MAX, size) + 1):
            out.extend([prefix + padded[i : i + n] for i in range(size - n + 1)])
    return out


Word = tuple[str, str]
"""A word of the model text and its diacritic-free form."""
Parts = tuple[list[str], list[Word], list[str]]
"""Features of a message split for cached inference: the message-level features (shape,
lexicon, signals), its words, and its bigrams as "first second" strings."""


def word_features(word: str, plain: str) -> list[str]:
    """Everything one word contributes: its unigrams and its character n-grams."""
    out = ["w:" + word, "a:" + plain]
    if word not in _MARKS:
        out.extend(word_char_grams(word, plain))
    return out


def bigram_features(bigram: str) -> list[str]:
    """The word bigram features of "first second" (with and without diacritics)."""
    return ["w:" + bigram, "a:" + strip_diacritics(bigram)]


def feature_parts(
    norm: Normalized, lexicon: Cues | None = None, signals: Cues | None = None
) -> Parts:
    """A message's features, split so that inference can memoise each word's and each
    bigram's share (they repeat a lot); :func:`text_features` flattens them for training."""
    words = norm.text.split()
    ascii_words = norm.ascii.split()
    pairs = list(zip(words, ascii_words, strict=False))
    bigrams = [f"{a} {b}" for a, b in pairwise(words)]
    out: list[str] = []
    n = len(words)
    size = 0 if n == 0 else 1 if n <= 3 else 2 if n <= 8 else 3 if n <= 20 else 4
    out.append(f"f:len{size}")
    if norm.has_emoji:
        out.append("f:emoji")
    if norm.language != "vi":
        out.append("f:lang_" + norm.language)
    # Cue features are repeated: a hand-picked cue should weigh like the several n-grams a
    # word contributes, or the n-grams of frequent words drown it.
    if lexicon is not None:
        out.extend(["k:" + name for name in lexicon.found for _ in range(CUE_REPEAT)])
        out.extend("k:not_" + name for name in lexicon.negated)
    if signals is not None:
        out.extend(["u:" + name for name in signals.found for _ in range(CUE_REPEAT)])
        if signals.negated:
            out.append("u:negated")
    return out, pairs, bigrams


def text_features(
    norm: Normalized, lexicon: Cues | None = None, signals: Cues | None = None
) -> list[str]:
    """Feature strings of one normalised message (duplicates are counted)."""
    out, pairs, bigrams = feature_parts(norm, lexicon, signals)
    for word, plain in pairs:
        out.extend(word_features(word, plain))
    for bigram in bigrams:
        out.extend(bigram_features(bigram))
    return out


def signal_names(signals: Cues) -> list[str]:
    """Signal names of a message for the priority block (a negated danger is "negated")."""
    names = list(signals.found)
    if signals.negated:
        names.append("negated")
    return names


def signal_feature_names() -> tuple[str, ...]:
    """Column names of the priority model's signal block, in a fixed order."""
    names: list[str] = [f"cat:{c}" for c in CATEGORIES]
    names.extend(f"s:{s}" for s in SIGNALS)
    names.extend(f"x:{c}|{s}" for c in CATEGORIES for s in SIGNALS)
    return tuple(names)


def signal_features(category: Category, signals: Iterable[str]) -> list[str]:
    """Active signal-block features for a message of ``category`` raising ``signals``."""
    active = [f"cat:{category}"]
    for s in signals:
        active.append(f"s:{s}")
        active.append(f"x:{category}|{s}")
    return active
