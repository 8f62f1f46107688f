"""Language of a message: ``vi``, ``en`` or ``other``. Pure and fast (word lists, no model).

The province's hotline sees Vietnamese (often without diacritics), English from tourists and
now and then Korean, Chinese, French... TRIAGE.md: a text with no words is ``vi``.
"""

from __future__ import annotations

import re
from typing import Final

from .labels import Language

# Letters that exist in Vietnamese but not in the Western European alphabets tourists use.
_VI_ONLY: Final = frozenset("ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹĩũ")
_LATIN_RE: Final = re.compile(r"[a-zà-ɏḀ-ỿ]")
_NON_LATIN_RE: Final = re.compile(
    r"[\u0370-\u03ff\u0400-\u04ff\u0590-\u05ff\u0600-\u06ff\u0e00-\u0e7f\u0e80-\u0eff"
    r"\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u1100-\u11ff]"
)
_WORD_RE: Final = re.compile(r"[^\W\d_]+")

# Common words of each language that are not also common Vietnamese syllables written
# without diacritics ("an", "me", "to", "the", "may", "ban", "la" are left out on purpose).
_EN: Final = frozenset(
    [
        "the",
        "is",
        "are",
        "was",
        "were",
        "am",
        "be",
        "been",
        "being",
        "and",
        "or",
        "but",
        "of",
        "in",
        "on",
        "at",
        "for",
        "from",
        "with",
        "without",
        "my",
        "our",
        "your",
        "their",
        "his",
        "her",
        "its",
        "we",
        "you",
        "they",
        "he",
        "she",
        "it",
        "me",
        "us",
        "them",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "where",
        "when",
        "who",
        "why",
        "how",
        "which",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "must",
        "have",
        "has",
        "had",
        "do",
        "does",
        "did",
        "not",
        "please",
        "sir",
        "madam",
        "hello",
        "hi",
        "help",
        "someone",
        "somebody",
        "anyone",
        "police",
        "officer",
        "yesterday",
        "today",
        "tonight",
        "tomorrow",
        "last",
        "night",
        "morning",
        "afternoon",
        "evening",
        "stolen",
        "steal",
        "stole",
        "robbed",
        "phone",
        "wallet",
        "bag",
        "passport",
        "hotel",
        "room",
        "beach",
        "motorbike",
        "bike",
        "scooter",
        "taxi",
        "driver",
        "street",
        "road",
        "near",
        "just",
        "now",
        "because",
        "about",
        "after",
        "before",
        "into",
        "over",
        "under",
        "out",
        "up",
        "down",
        "off",
        "again",
        "very",
        "really",
        "also",
        "only",
        "any",
        "some",
        "all",
        "no",
        "yes",
        "thank",
        "thanks",
        "hey",
        "dear",
        "need",
        "want",
        "lost",
        "found",
        "call",
        "called",
        "someone's",
        "i'm",
        "we're",
        "it's",
        "don't",
        "didn't",
        "can't",
        "there's",
        "is",
        "it",
        "please",
    ]
)
_VI: Final = frozenset(
    [
        "toi",
        "khong",
        "nguoi",
        "anh",
        "em",
        "chi",
        "cua",
        "dang",
        "vua",
        "bi",
        "nha",
        "di",
        "ve",
        "cho",
        "minh",
        "gi",
        "nay",
        "ni",
        "mo",
        "roi",
        "duoc",
        "voi",
        "thi",
        "nhung",
        "cac",
        "mot",
        "nhieu",
        "lam",
        "biet",
        "chua",
        "oi",
        "nhe",
        "hom",
        "sang",
        "chieu",
        "dem",
        "trom",
        "mat",
        "lua",
        "dao",
        "danh",
        "nhau",
        "xin",
        "chao",
        "cam",
        "ko",
        "dc",
        "đc",
        "ng",
        "j",
        "vs",
        "ae",
        "sdt",
        "ak",
        "ah",
        "ạ",
        "e",
        "ơi",
        "nghe",
        "rang",
        "rua",
        "tui",
        "chu",
        "giup",
        "cuu",
        "xe",
        "tren",
        "duoi",
        "truoc",
        "sau",
        "trong",
        "ngoai",
        "thay",
        "noi",
        "hoi",
        "bao",
        "lai",
        "con",
        "ong",
        "ba",
        "co",
    ]
)
_FR: Final = frozenset(
    [
        "le",
        "les",
        "est",
        "et",
        "nous",
        "vous",
        "je",
        "une",
        "des",
        "du",
        "dans",
        "pour",
        "avec",
        "bonjour",
        "merci",
        "pas",
        "sur",
        "qui",
        "mon",
        "notre",
        "votre",
        "il",
        "elle",
        "sont",
        "avons",
        "avez",
        "volé",
        "police",
        "aide",
        "hier",
        "soir",
        "ce",
        "cette",
    ]
)
_DE: Final = frozenset(
    [
        "der",
        "die",
        "das",
        "und",
        "ist",
        "ich",
        "nicht",
        "wir",
        "sie",
        "ein",
        "eine",
        "mit",
        "auf",
        "für",
        "danke",
        "hallo",
        "bitte",
        "wo",
        "mein",
        "unser",
        "gestohlen",
        "polizei",
        "hilfe",
        "gestern",
        "heute",
    ]
)
_ES: Final = frozenset(
    [
        "el",
        "los",
        "las",
        "es",
        "que",
        "por",
        "para",
        "una",
        "gracias",
        "hola",
        "ayuda",
        "mi",
        "nosotros",
        "robado",
        "policía",
        "ayer",
        "está",
        "estamos",
    ]
)
_ID: Final = frozenset(
    [
        "saya",
        "tidak",
        "ini",
        "itu",
        "dan",
        "yang",
        "polisi",
        "tolong",
        "terima",
        "kasih",
        "kami",
        "dompet",
        "hilang",
    ]
)
# Words that carry no language (TRIAGE.md: "ok" is vi).
_FILLER: Final = frozenset(
    ["ok", "oke", "okay", "okie", "alo", "hello", "hi", "test", "ok.", "yes", "no"]
)


def detect_language(folded: str, words: list[str] | None = None) -> Language:
    """Language of a folded (NFC, lower-case) text; no words at all → ``vi``.

    ``words`` may pass the text's words when the caller already split it (saves a pass).
    """
    ascii_only = folded.isascii()
    if not ascii_only and _NON_LATIN_RE.search(folded):
        non_latin = len(_NON_LATIN_RE.findall(folded))
        if non_latin > len(_LATIN_RE.findall(folded)):
            return "other"
    if words is None:
        words = _WORD_RE.findall(folded)
    words = [w for w in words if w.isalpha() and _LATIN_RE.match(w)]
    if not words:
        return "vi"
    vi_marked = 0 if ascii_only else sum(1 for w in words if not _VI_ONLY.isdisjoint(w))
    if vi_marked and vi_marked * 6 >= len(words):
        return "vi"
    scores = {
        "en": sum(1 for w in words if w in _EN and w not in _FILLER),
        "vi": sum(1 for w in words if w in _VI) + 2 * vi_marked,
        "fr": sum(1 for w in words if w in _FR),
        "de": sum(1 for w in words if w in _DE),
        "es": sum(1 for w in words if w in _ES),
        "id": sum(1 for w in words if w in _ID),
    }
    best = max(scores, key=lambda k: (scores[k], k == "vi", k == "en"))
    if scores[best] == 0 or best == "vi":
        return "vi"
    if best == "en":
        return "en"
    return "other"
