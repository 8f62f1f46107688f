"""Text normalisation for triage: pure functions, no I/O.

Hotline messages mix Vietnamese with and without diacritics, texting abbreviations ("ko",
"dc", "a/e"), Huế dialect, emoji, stickers and English. Two forms come out of here:

* the *folded* form (NFC, case-folded, one tone-mark convention, emoji removed, punctuation
  kept) that the gazetteer and the urgency/time signals match phrases against, because
  punctuation separates phrases and abbreviation expansion would break names like "A Lưới";
* the *model* form (tokens only, abbreviations expanded, digits collapsed) plus its
  diacritic-free twin, which feed the statistical model so "co nguoi danh nhau" and
  "có người đánh nhau" share features.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from .labels import Language
from .language import detect_language

MAX_CHARS: Final = 2000
"""Input is truncated to this many characters before anything else (bounded work per item)."""

# --------------------------------------------------------------------------- diacritics

_TONE_MARKS: Final = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")


def _build_ascii_table() -> dict[int, str]:
    table: dict[int, str] = {ord("đ"): "d", ord("Đ"): "D"}
    for code in range(0x00C0, 0x1EFA):
        char = chr(code)
        base = unicodedata.normalize("NFD", char)[0]
        if base != char and base.isascii() and base.isalpha():
            table[code] = base
    return table


_ASCII_TABLE: Final = _build_ascii_table()
_COMBINING_RE: Final = re.compile(r"[\u0300-\u036f]")


def strip_diacritics(text: str) -> str:
    """Vietnamese text without tone marks or vowel hats, with "đ" → "d" (input must be NFC)."""
    out = text.translate(_ASCII_TABLE)
    if not out.isascii():
        # Stray combining marks (text that was not NFC, or marks on non-Latin bases).
        out = _COMBINING_RE.sub("", out)
    return out


def _tone(char: str, mark: str) -> str:
    return unicodedata.normalize("NFC", char + mark)


def _build_tone_moves() -> dict[str, str]:
    # Vietnamese has two conventions for where the tone mark of "oa", "oe", "uy" goes at the
    # end of a syllable ("hoà"/"hòa", "thuỷ"/"thủy"). Place names and signals are written in
    # one convention, so the other is rewritten to it.
    moves: dict[str, str] = {}
    for first, second in (("o", "a"), ("o", "e"), ("u", "y")):
        for mark in _TONE_MARKS:
            moves[first + _tone(second, mark)] = _tone(first, mark) + second
    return moves


_TONE_MOVES: Final = _build_tone_moves()
_TONE_RE: Final = re.compile(
    r"(?<!q)(" + "|".join(sorted(_TONE_MOVES, key=len, reverse=True)) + r")(?!\w)"
)


def unify_tone_marks(text: str) -> str:
    """Rewrite syllable-final "oà/oé/uỷ…" to "òa/óe/ủy…" so both conventions compare equal."""
    return _TONE_RE.sub(lambda m: _TONE_MOVES[m.group(1)], text)


def fold(text: str) -> str:
    """NFC, case-folded, one tone-mark convention; punctuation and emoji are kept."""
    return unify_tone_marks(unicodedata.normalize("NFC", text).casefold())


# --------------------------------------------------------------------------- emoji & media

_EMOJI_RE: Final = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, flags, symbols & pictographs
    "\u2600-\u27bf"  # misc symbols, dingbats (❤, ✌, ☺)
    "\u2b00-\u2bff"  # arrows, stars (⭐)
    "\u2300-\u23ff"  # technical (⌚, ⏰)
    "\ufe0e\ufe0f\u200d\u20e3"  # variation selectors, zero-width joiner, keycap
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
    "]+"
)
# Text emoticons that carry no report content.
_EMOTICON_RE: Final = re.compile(r"(?<!\w)(?::|;|=)-?[)(dpo3*]+|<3|\^_?\^|:v(?!\w)", re.IGNORECASE)
# Placeholders that chat providers put in place of non-text content.
_MEDIA_RE: Final = re.compile(
    r"\[\s*(sticker|hình ảnh|hinh anh|ảnh|anh|image|photo|picture|video|gif|voice|audio|"
    r"file|tệp|tep|emoji|link|location|vị trí|vi tri)\s*\]",
    re.IGNORECASE,
)
_STICKER_RE: Final = re.compile(r"\[\s*sticker\s*\]", re.IGNORECASE)
_EMOTICON_CHARS: Final = frozenset(":;=<^")

# --------------------------------------------------------------------------- abbreviations

ABBREVIATIONS: Final[dict[str, str]] = {
    # negation
    "ko": "không",
    "k": "không",
    "kh": "không",
    "khg": "không",
    "hok": "không",
    "hk": "không",
    "hem": "không",
    "khong": "không",
    "k0": "không",
    # được
    "dc": "được",
    "đc": "được",
    "dk": "được",
    "đk": "được",
    "duoc": "được",
    # people and address terms
    "a": "anh",
    "e": "em",
    "c": "chị",
    "ng": "người",
    "ngta": "người ta",
    "ae": "anh em",
    "mn": "mọi người",
    "mng": "mọi người",
    "mik": "mình",
    "mk": "mình",
    "mjk": "mình",
    "ck": "chồng",
    "vk": "vợ",
    "bn": "bao nhiêu",
    "bnh": "bao nhiêu",
    # function words
    "j": "gì",
    "gi": "gì",
    "vs": "với",
    "voi": "với",
    "r": "rồi",
    "cx": "cũng",
    "cg": "cũng",
    "ntn": "như thế nào",
    "v": "vậy",
    "z": "vậy",
    "zay": "vậy",
    "wa": "quá",
    "qa": "quá",
    "wá": "quá",
    "ms": "mới",
    "trc": "trước",
    "tr": "triệu",
    "bh": "bây giờ",
    "bgio": "bây giờ",
    "bjo": "bây giờ",
    "bjờ": "bây giờ",
    "h": "giờ",
    "hnay": "hôm nay",
    "hqua": "hôm qua",
    "hum": "hôm",
    "ik": "đi",
    "bít": "biết",
    "bik": "biết",
    "nhìu": "nhiều",
    "thui": "thôi",
    "zô": "vô",
    "ntin": "nhắn tin",
    "nt": "nhắn tin",
    # things
    "sdt": "số điện thoại",
    "sđt": "số điện thoại",
    "đt": "điện thoại",
    "dt": "điện thoại",
    "dth": "điện thoại",
    "đth": "điện thoại",
    "oto": "ô tô",
    "xm": "xe máy",
    "tp": "thành phố",
    "tx": "thị xã",
    "csgt": "cảnh sát giao thông",
    "cstt": "cảnh sát trật tự",
    "stk": "số tài khoản",
    "tk": "tài khoản",
    # Huế dialect, only in spellings that cannot be another word ("mo", "rang", "chi" can)
    "ni": "này",
    "mô": "đâu",
    "răng": "sao",
    "rứa": "vậy",
    "tê": "kia",
    "nớ": "đó",
    "chừ": "giờ",
    "tui": "tôi",
    "mạ": "mẹ",
    "mệ": "bà",
    "hỉ": "nhỉ",
    # thanks (also English, so tourists' thanks share features with Vietnamese ones)
    "tks": "cảm ơn",
    "thks": "cảm ơn",
    "thanks": "cảm ơn",
    "thank": "cảm ơn",
    "thx": "cảm ơn",
    "camon": "cảm ơn",
}

_WORD_RE: Final = re.compile(r"[^\W_]+|[?!]")
_DIGITS_RE: Final = re.compile(r"\d+")
_REPEAT_RE: Final = re.compile(r"(\w)\1{2,}")
_SPACE_RE: Final = re.compile(r"\s+")
_LETTER_RE: Final = re.compile(r"[^\W\d_]")


@dataclass(frozen=True, slots=True)
class Normalized:
    """All forms of one message the rest of the engine needs."""

    folded: str
    """NFC, case-folded, tone-unified, emoji/media removed, spaces collapsed, punctuation kept."""
    text: str
    """Model form: word tokens with abbreviations expanded and digit runs as "0"."""
    ascii: str
    """``text`` without diacritics."""
    has_words: bool
    """At least one letter survived (emoji, stickers, "." and digits alone are not words)."""
    has_emoji: bool
    emoji_only: bool
    """Emoji/emoticons (or media placeholders) and nothing that is a word."""
    sticker: bool
    language: Language
    truncated: bool
    length: int
    """Length of the input before truncation."""


def expand_tokens(tokens: list[str]) -> list[str]:
    """Expand texting abbreviations token by token (only whole tokens are replaced)."""
    out: list[str] = []
    for token in tokens:
        expansion = ABBREVIATIONS.get(token)
        if expansion is None:
            out.append(token)
        else:
            out.extend(expansion.split())
    return out


def normalize(raw: str | None, max_chars: int = MAX_CHARS) -> Normalized:
    """Normalise one message (``None`` is treated as empty)."""
    source = raw or ""
    length = len(source)
    truncated = length > max_chars
    if truncated:
        source = source[:max_chars]
    folded = fold(source)
    # Cheap character tests skip the regular expressions most messages do not need.
    sticker = had_media = False
    without_media = folded
    if "[" in folded:
        sticker = _STICKER_RE.search(folded) is not None
        without_media = _MEDIA_RE.sub(" ", folded)
        had_media = without_media != folded
    without_emoji = without_media
    if not without_media.isascii():
        without_emoji = _EMOJI_RE.sub(" ", without_media)
    has_emoji = without_emoji != without_media
    without_emoticons = without_emoji
    if _EMOTICON_CHARS.intersection(without_emoji):
        without_emoticons = _EMOTICON_RE.sub(" ", without_emoji)
        has_emoji = has_emoji or without_emoticons != without_emoji
    cleaned = _SPACE_RE.sub(" ", _REPEAT_RE.sub(r"\1", without_emoticons)).strip()
    has_words = _LETTER_RE.search(cleaned) is not None
    tokens = _WORD_RE.findall(cleaned)
    language = detect_language(cleaned, tokens)
    if language == "vi":
        # In English (or French...) "a", "e", "thanks" are words, not Vietnamese shorthand.
        tokens = expand_tokens(tokens)
    text = _DIGITS_RE.sub("0", " ".join(tokens))
    return Normalized(
        folded=cleaned,
        text=text,
        ascii=strip_diacritics(text),
        has_words=has_words,
        has_emoji=has_emoji,
        emoji_only=(has_emoji or had_media) and not has_words,
        sticker=sticker,
        language=language,
        truncated=truncated,
        length=length,
    )
