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
    # NFD splits every Vietnamese letter into an ASCII base and combining marks; dropping the
    # non-ASCII remainder keeps the bases (other scripts vanish, which merging can afford).
    return unicodedata.normalize("NFD", lowered).encode("ascii", "ignore").decode("ascii")


def significant_words(text: str) -> frozenset[str]:
    """The words of a report that identify its incident (folded, no stopwords, len ≥ 2)."""
    return frozenset(w for w in _WORD.findall(fold(text)) if len(w) >= 2 and w not in STOPWORDS)


# Words every report of a kind shares ("trộm xe máy", "cháy nhà", "đường", "số"): they weigh a
# quarter, so two thefts on different streets do not look alike while two reports naming the same
# street, alley, market or house number do.
GENERIC = frozenset(
    [
        "trom",
        "cap",
        "cuop",
        "giat",
        "xe",
        "may",
        "oto",
        "chay",
        "no",
        "danh",
        "nhau",
        "dam",
        "chem",
        "tai",
        "nan",
        "va",
        "cham",
        "dua",
        "ma",
        "tuy",
        "bac",
        "lo",
        "de",
        "lua",
        "dao",
        "tien",
        "vay",
        "gop",
        "rac",
        "thai",
        "cat",
        "khai",
        "thac",
        "go",
        "rung",
        "on",
        "tieng",
        "karaoke",
        "say",
        "ruou",
        "tu",
        "tap",
        "gay",
        "roi",
        "bi",
        "mat",
        "nguoi",
        "dan",
        "duong",
        "so",
        "kiet",
        "hem",
        "ngo",
        "phuong",
        "xa",
        "thon",
        "to",
        "pho",
        "quan",
        "huyen",
        "tran",
        "tp",
        "thanh",
        "gan",
        "truoc",
        "sau",
        "canh",
        "dang",
        "luc",
        "gio",
        "sang",
        "chieu",
        "toi",
        "dem",
        "nay",
        "hom",
        "qua",
    ]
)
GENERIC_WEIGHT = 0.25


def _weight(words: frozenset[str]) -> float:
    return sum(GENERIC_WEIGHT if w in GENERIC else 1.0 for w in words)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Weighted overlap coefficient: shared weight / the smaller report's weight (0..1).

    A short report contained in a long one scores 1; words common to every report of a kind
    (GENERIC) count a quarter.
    """
    if not a or not b:
        return 0.0
    return _weight(a & b) / min(_weight(a), _weight(b))


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
