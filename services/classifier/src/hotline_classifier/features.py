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
from .normalize import Normalized
from .signals import SIGNALS

FEATURE_VERSION: Final = "f5"
"""Bumped whenever extraction changes, so an artefact never meets features it was not built on."""

CUE_REPEAT: Final = 3
CHAR_MIN: Final = 2
CHAR_MAX: Final = 5
_MARKS: Final = frozenset({"?", "!"})


def _char_grams(prefix: str, word: str, out: list[str]) -> None:
    padded = f" {word} "
    size = len(padded)
    for n in range(CHAR_MIN, min(CHAR_MAX, size) + 1):
        for i in range(size - n + 1):
            out.append(prefix + padded[i : i + n])


def text_features(
    norm: Normalized, lexicon: Cues | None = None, signals: Cues | None = None
) -> list[str]:
    """Feature strings of one normalised message (duplicates are counted)."""
    words = norm.text.split()
    ascii_words = norm.ascii.split()
    out: list[str] = ["w:" + w for w in words]
    out.extend(f"w:{a} {b}" for a, b in pairwise(words))
    out.extend("a:" + w for w in ascii_words)
    out.extend(f"a:{a} {b}" for a, b in pairwise(ascii_words))
    for word, plain in zip(words, ascii_words, strict=False):
        if word in _MARKS:
            continue
        _char_grams("c:", plain, out)
        if word != plain:
            _char_grams("d:", word, out)
    n = len(words)
    out.append(
        "f:len0"
        if n == 0
        else "f:len1"
        if n <= 3
        else "f:len2"
        if n <= 8
        else "f:len3"
        if n <= 20
        else "f:len4"
    )
    if norm.has_emoji:
        out.append("f:emoji")
    if norm.language != "vi":
        out.append("f:lang_" + norm.language)
    # Cue features are repeated so that, after sublinear tf-idf, one hand-picked cue weighs
    # about as much as the few n-grams a single unseen word would contribute.
    if lexicon is not None:
        out.extend(("k:" + name for name in lexicon.found for _ in range(CUE_REPEAT)))
        out.extend("k:not_" + name for name in lexicon.negated)
    if signals is not None:
        out.extend(("u:" + name for name in signals.found for _ in range(CUE_REPEAT)))
        if signals.negated:
            out.append("u:negated")
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
