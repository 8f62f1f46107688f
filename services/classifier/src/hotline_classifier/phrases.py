"""Whole-phrase matching that tolerates missing diacritics but never crosses punctuation.

Used by the gazetteer (place names) and by the urgency/time signals. A text token written
*with* diacritics must equal the pattern token exactly ("làng" is not "lăng"); a token written
*without* any diacritics matches the pattern's diacritic-free form ("lang" matches "lăng"). So
"Lang Co", "LĂNG CÔ" and "lăng cô" all name Lăng Cô, while "làng có" does not. Punctuation ends
a phrase, so "…cua lang, co…" cannot match either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from .normalize import fold, strip_diacritics

T = TypeVar("T")

# Punctuation that separates phrases. An intra-word hyphen ("A-Lưới") does not; a spaced or
# long dash does. Abbreviation dots ("tp. Huế") are removed first so they do not split a name.
_ABBREV_DOT_RE: Final = re.compile(r"\b(tp|tx|tt|q|p|x|h|đ|st|mt|ng|ql|tl|no)\.", re.IGNORECASE)
_SPLIT_RE: Final = re.compile(r"[.,;:!?…()\[\]{}\"“”«»/\\|\n\r\t•*]+|\s[-–—]+\s|[–—]")
# Latin-script words, or runs of other scripts (Chinese and Japanese write no spaces, so a
# Latin place name inside them must still come out as its own token).
_LATIN: Final = "0-9a-zA-Z\u00c0-\u024f\u1e00-\u1eff"
_TOKEN_RE: Final = re.compile(rf"[{_LATIN}]+|[^\W_{_LATIN}]+")


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a phrase: folded form and its diacritic-free form."""

    text: str
    ascii: str

    @property
    def plain(self) -> bool:
        """Written without any diacritics (so it may stand for several accented words)."""
        return self.text == self.ascii


Phrase = tuple[Token, ...]


_TOKENS: dict[str, Token] = {}
_TOKENS_LIMIT: Final = 100_000


def _token(word: str) -> Token:
    # Tokens are immutable and words repeat, so they are shared (bounded memo).
    token = _TOKENS.get(word)
    if token is None:
        if len(_TOKENS) >= _TOKENS_LIMIT:
            _TOKENS.clear()
        token = _TOKENS[word] = Token(word, strip_diacritics(word))
    return token


def split_phrases(folded: str) -> list[Phrase]:
    """Split a folded text into punctuation-free phrases of tokens."""
    phrases: list[Phrase] = []
    if "." in folded:
        folded = _ABBREV_DOT_RE.sub(r"\1 ", folded)
    for chunk in _SPLIT_RE.split(folded):
        words = _TOKEN_RE.findall(chunk)
        if words:
            phrases.append(tuple(map(_token, words)))
    return phrases


@dataclass(frozen=True, slots=True)
class Pattern(Generic[T]):
    """A phrase to look for and what it means.

    A *strict* pattern (written with a leading "=") only matches text that carries the
    diacritics: without them, words like "cháy" (burning) and "chạy" (running), "máu" (blood)
    and "mau" (quickly) are the same string, so such words need other evidence.
    """

    name: str
    tokens: tuple[str, ...]
    ascii_tokens: tuple[str, ...]
    payload: T
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    """Where a pattern matched: phrase index and token span ``[start, end)``."""

    phrase: int
    start: int
    end: int
    pattern: Pattern[T]
    exact: bool
    """Every token matched with its diacritics (no token relied on the diacritic-free form)."""


class PhraseMatcher(Generic[T]):
    """Finds every occurrence of a set of phrases in a tokenised text."""

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        index: dict[str, list[Pattern[T]]] = {}
        for raw_name, payload in entries:
            strict = raw_name.startswith("=")
            name = raw_name[1:] if strict else raw_name
            words = tuple(_TOKEN_RE.findall(fold(name)))
            if not words:
                continue
            pattern = Pattern(
                name=name,
                tokens=words,
                ascii_tokens=tuple(strip_diacritics(w) for w in words),
                payload=payload,
                strict=strict,
            )
            index.setdefault(" ".join(pattern.ascii_tokens), []).append(pattern)
        # Candidates are looked up by their whole diacritic-free form, one dict probe per
        # (start, length); the diacritics are then checked token by token.
        self._by_key = index
        # First word → the lengths of the patterns starting with it (most start few patterns).
        lengths: dict[str, set[int]] = {}
        for key in index:
            key_words = key.split(" ")
            lengths.setdefault(key_words[0], set()).add(len(key_words))
        self._lengths = {first: tuple(sorted(n)) for first, n in lengths.items()}

    def find(self, phrases: Sequence[Phrase]) -> list[Match[T]]:
        """All matches, in text order (overlaps are kept; callers decide which win)."""
        found: list[Match[T]] = []
        by_key = self._by_key
        starting = self._lengths
        for p, phrase in enumerate(phrases):
            n = len(phrase)
            plain = [t.ascii for t in phrase]
            for start in range(n):
                lengths = starting.get(plain[start])
                if lengths is None:
                    continue
                for length in lengths:
                    end = start + length
                    if end > n:
                        break
                    key = plain[start] if length == 1 else " ".join(plain[start:end])
                    candidates = by_key.get(key)
                    if candidates is None:
                        continue
                    for pattern in candidates:
                        exact = True
                        for offset, word in enumerate(pattern.tokens):
                            token = phrase[start + offset]
                            if token.text == word:
                                continue
                            # Same diacritic-free spelling (the key matched): acceptable only
                            # when the text carries no diacritics at all on this word.
                            if not pattern.strict and token.plain:
                                exact = False
                                continue
                            break
                        else:
                            found.append(Match(p, start, end, pattern, exact))
        return found


def mask_spans(phrases: Sequence[Phrase], spans: Iterable[tuple[int, int, int]]) -> list[Phrase]:
    """Phrases with the token spans ``(phrase, start, end)`` cut out (each cut splits a phrase).

    Used to hide place names from the urgency cues: "Phú Mậu" must not read as "máu".
    """
    cuts: dict[int, list[tuple[int, int]]] = {}
    for p, start, end in spans:
        cuts.setdefault(p, []).append((start, end))
    if not cuts:
        return list(phrases)
    out: list[Phrase] = []
    for p, phrase in enumerate(phrases):
        if p not in cuts:
            out.append(phrase)
            continue
        position = 0
        for start, end in sorted(cuts[p]):
            if start > position:
                out.append(phrase[position:start])
            position = max(position, end)
        if position < len(phrase):
            out.append(phrase[position:])
    return out


def expand_phrases(phrases: Sequence[Phrase], expansions: Mapping[str, str]) -> list[Phrase]:
    """Phrases with texting abbreviations expanded ("k tinh" → "không tỉnh"), for cue matching.

    Place names are matched before this step: expansion would turn "A Lưới" into "anh lưới".
    """
    out: list[Phrase] = []
    for phrase in phrases:
        tokens: list[Token] = []
        changed = False
        for token in phrase:
            expansion = expansions.get(token.text)
            if expansion is None:
                tokens.append(token)
                continue
            changed = True
            tokens.extend(Token(w, strip_diacritics(w)) for w in expansion.split())
        out.append(tuple(tokens) if changed else phrase)
    return out
