"""Text helpers for merging and acknowledgements: diacritics folding, significant words,
localities and house numbers."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping

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


# --------------------------------------------------------------------------- where, exactly

# Words that say what kind of place a gazetteer name is, not which one ("chợ Phú Đa" is in
# Phú Đa, "Vinh Thanh beach" is Vinh Thanh). Written with their diacritics: "vịnh" (bay) is
# a type, "Vinh" in "Vinh Thanh" is a name. Phrases go first so "sân bay" goes as a whole.
_PLACE_TYPE_PHRASES = (
    "cảng hàng không",
    "khu công nghiệp",
    "suối nước nóng",
    "railway station",
    "train station",
    "thị trấn",
    "thị xã",
    "sân bay",
    "nhà ga",
    "bến xe",
    "làng cổ",
)
_PLACE_TYPE_WORDS = frozenset(
    [
        *("chợ", "cầu", "biển", "bãi", "vịnh", "đầm", "phá", "sông", "xã", "phường", "thôn"),
        *("ga", "chùa", "đường", "đèo", "dốc", "kcn"),
        *("beach", "market", "bridge", "airport", "town", "pagoda", "station", "lagoon"),
    ]
)


@functools.lru_cache(maxsize=4096)  # localities are gazetteer names: a bounded set
def locality_words(locality: str) -> tuple[str, ...]:
    """The naming words of a gazetteer locality, lower case with diacritics, type words
    dropped: 'chợ Phú Đa' → ('phú', 'đa'), 'Lang Co beach' → ('lang', 'co')."""
    text = " ".join(unicodedata.normalize("NFC", locality).lower().split())
    for phrase in _PLACE_TYPE_PHRASES:
        text = re.sub(rf"(?<!\w){phrase}(?!\w)", " ", text)
    return tuple(w for w in re.findall(r"\w+", text) if w not in _PLACE_TYPE_WORDS)


def _same_word(a: str, b: str) -> bool:
    # Names written without diacritics in the gazetteer ("Dong Ba market") equal their
    # Vietnamese spelling; two spellings with diacritics must agree ("Hương Văn" is not
    # "Hương Vân").
    return a == b or ((a.isascii() or b.isascii()) and fold(a) == fold(b))


def same_locality(a: str, b: str) -> bool:
    """Do two gazetteer localities name the same place, one inside or beside the other?

    True when the naming words of one are all among the other's ('Phú Đa', 'thị trấn Phú
    Đa' and 'chợ Phú Đa' are one place; 'Kinh thành' and 'Kinh thành Huế' too); 'Phú Đa' and
    'Phú Diên' are two communes."""
    wa, wb = locality_words(a), locality_words(b)
    if not wa or not wb:
        return True

    def within(small: tuple[str, ...], large: tuple[str, ...]) -> bool:
        return all(any(_same_word(w, v) for v in large) for w in small)

    return within(wa, wb) or within(wb, wa)


def count_places(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Reports per place, most first: localities with the same naming words counted as one
    ('Phú Đa' 3 and 'chợ Phú Đa' 1 → 'Phú Đa' 4), under the shortest of their names."""
    groups: dict[tuple[str, ...], tuple[str, int]] = {}
    for name, n in counts.items():
        key = locality_words(name) or (name,)
        shown, total = groups.get(key, (name, 0))
        groups[key] = (min(shown, name, key=lambda s: (len(s), s)), total + n)
    return sorted(groups.values(), key=lambda kv: (-kv[1], kv[0]))


# "số 12", "số nhà 12", "nhà số 12/3", "kiệt 45", "hẻm 7", "ngõ 3", "ngách 2", and the
# numbered hamlets and neighbourhoods of a commune or ward ("thôn 3", "xóm 2", "tổ dân phố 5",
# "khu vực 4") in folded text. A bare "số"/"nhà" number followed by a counter ("nhà 3 tầng",
# "số 2 người") is not an address.
_ADDRESS = re.compile(
    r"\b(so nha|nha so|so|nha|kiet|hem|ngo|ngach|thon|xom|to dan pho|khu vuc|khu pho)\s+"
    r"(\d{1,4}[a-z]?(?:/\d{1,4}[a-z]?){0,3})\b(?!\s*(?:tang|nguoi|chiec|cai|con|xe|tuoi|km|"
    r"met|m|gio|h|phut|lan|ngay|thang|nam|trieu|ty|nghin|ngan|k|tr|dong|vnd|ho|can|lo)\b)"
)
_ADDRESS_KIND = {
    "so nha": "house",
    "nha so": "house",
    "so": "house",
    "nha": "house",
    "kiet": "alley",
    "hem": "alley",
    "ngo": "alley",
    "ngach": "alley",
    "thon": "hamlet",
    "xom": "hamlet",
    "to dan pho": "hamlet",
    "khu vuc": "hamlet",
    "khu pho": "hamlet",
}


def address_numbers(text: str) -> frozenset[str]:
    """House, alley and hamlet numbers a report gives: 'house:12', 'alley:45/3', 'hamlet:3'."""
    return frozenset(
        f"{_ADDRESS_KIND[m.group(1)]}:{m.group(2)}" for m in _ADDRESS.finditer(fold(text))
    )


def different_addresses(a: frozenset[str], b: frozenset[str]) -> bool:
    """Two reports give a house (or alley, or hamlet) number each, and none of them agree."""
    for kind in ("house", "alley", "hamlet"):
        na = {x for x in a if x.startswith(kind + ":")}
        nb = {x for x in b if x.startswith(kind + ":")}
        if na and nb and not na & nb:
            return True
    return False


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
