"""Text helpers for merging and acknowledgements: diacritics folding, significant words."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+")

# Words that say nothing about *which* incident a report is about (Vietnamese folded to ASCII,
# texting abbreviations, English). Kept short on purpose: place and object words must survive,
# so folded words that are also nouns (nha = nhà, cho = chợ, no = nổ, ba = Đông Ba) are kept.
STOPWORDS = frozenset(
    {
        "a",
        "ah",
        "ak",
        "an",
        "and",
        "anh",
        "are",
        "at",
        "ay",
        "b",
        "bac",
        "be",
        "ben",
        "bi",
        "bo",
        "ca",
        "cac",
        "cai",
        "can",
        "chi",
        "chu",
        "co",
        "con",
        "cua",
        "cuu",
        "da",
        "dang",
        "dc",
        "de",
        "den",
        "di",
        "do",
        "duoc",
        "e",
        "em",
        "for",
        "from",
        "gi",
        "gium",
        "giup",
        "ha",
        "hay",
        "he",
        "help",
        "here",
        "hien",
        "hom",
        "in",
        "is",
        "it",
        "j",
        "k",
        "ka",
        "khong",
        "kia",
        "ko",
        "la",
        "lai",
        "lam",
        "luc",
        "ma",
        "minh",
        "mn",
        "moi",
        "mot",
        "nao",
        "nay",
        "ne",
        "ng",
        "nguoi",
        "nhe",
        "nhieu",
        "nhu",
        "nhung",
        "o",
        "of",
        "oi",
        "on",
        "ong",
        "or",
        "please",
        "police",
        "qua",
        "ra",
        "rat",
        "roi",
        "sao",
        "se",
        "ta",
        "tai",
        "thay",
        "the",
        "there",
        "thi",
        "this",
        "to",
        "toi",
        "tren",
        "trong",
        "tu",
        "va",
        "vao",
        "vay",
        "ve",
        "voi",
        "vs",
        "vui",
        "was",
        "with",
        "xin",
        "xong",
    }
)


def fold(text: str) -> str:
    """Lower case without diacritics: 'Chợ Đông Ba' → 'cho dong ba'."""
    lowered = text.lower().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def significant_words(text: str) -> frozenset[str]:
    """The words of a report that identify its incident (folded, no stopwords, len ≥ 2)."""
    return frozenset(w for w in _WORD.findall(fold(text)) if len(w) >= 2 and w not in STOPWORDS)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Overlap coefficient |A ∩ B| / min(|A|, |B|): a short report inside a long one scores 1."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


_ACK_WORDS = r"(?:ok|okay|oke|da nhan|nhan|ro|xac nhan|ack)"


def parse_acknowledgement(text: str, case_prefix: str) -> str | None:
    """The case id in an officer's 'OK HUE-20240124-0042' reply (either order), else None."""
    folded = fold(text).strip()
    if len(folded) > 120:
        return None
    case = rf"({case_prefix.lower()}-\d{{8}}-\d{{4,}})"
    patterns = (
        rf"^{_ACK_WORDS}\b[\s,.:;!-]*(?:vu\s+|case\s+)?{case}\b",
        rf"^{case}\b[\s,.:;!-]*{_ACK_WORDS}\b",
    )
    for pattern in patterns:
        match = re.search(pattern, folded)
        if match:
            return match.group(1).upper()
    return None
