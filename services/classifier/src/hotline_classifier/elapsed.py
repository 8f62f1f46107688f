"""Relative times with a quantity: "cách đây 3 tiếng", "5 phút trước", "3h trc", "2 hours ago".

TRIAGE.md: a theft or scam still going on or within about the last hour is P2, last night or
earlier is P3. Fixed time phrases ("vừa", "tối qua") are signals in ``signals.py``; a phrase
with a quantity has to be read: "cách đây 10 phút" is just now, "cách đây 3 tiếng" is not. A
reading of at most :data:`RECENT_MINUTES` raises the ``just`` signal, a longer one ``past``, and
the reason quotes what was read ("time: 'cách đây 3 tiếng' → 3 h ago: past").

Only quantities tied to the present are read: "cách đây N …", "N … trước", "N … ago". A bare
"3h" is a clock time, "2 tiếng súng" two gunshots, "2 ngày trước cổng" in front of the gate.
Tokens come from :func:`~hotline_classifier.phrases.split_phrases` (folded, abbreviations
already expanded for Vietnamese: "trc" → "trước", a lone "h" → "giờ").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from .cues import Cues
from .phrases import Phrase, Token

RECENT_MINUTES: Final = 60
"""TRIAGE.md's "within about the last hour": up to this many minutes ago is still now."""

# Units: (minutes, label). A token written with diacritics must be spelt exactly; a token
# without any ("tieng") may stand for the accented word.
_MIN: Final = (1.0, "min")
_HOUR: Final = (60.0, "h")
_DAY: Final = (1440.0, "day")
_WEEK: Final = (10080.0, "week")
_MONTH: Final = (43200.0, "month")
_YEAR: Final = (525600.0, "year")
_UNIT_MINUTES: Final = dict(
    (label, size) for size, label in (_MIN, _HOUR, _DAY, _WEEK, _MONTH, _YEAR)
)
_UNITS_ACCENTED: Final[Mapping[str, tuple[float, str]]] = {
    "phút": _MIN,
    "tiếng": _HOUR,
    "giờ": _HOUR,
    "ngày": _DAY,
    "hôm": _DAY,
    "tuần": _WEEK,
    "tháng": _MONTH,
    "năm": _YEAR,
}
_UNITS_PLAIN: Final[Mapping[str, tuple[float, str]]] = {
    "phut": _MIN,
    "p": _MIN,
    "ph": _MIN,
    "tieng": _HOUR,
    "gio": _HOUR,
    "h": _HOUR,
    "ngay": _DAY,
    "hom": _DAY,
    "tuan": _WEEK,
    "thang": _MONTH,
    "nam": _YEAR,
    "minute": _MIN,
    "minutes": _MIN,
    "min": _MIN,
    "mins": _MIN,
    "hour": _HOUR,
    "hours": _HOUR,
    "hr": _HOUR,
    "hrs": _HOUR,
    "day": _DAY,
    "days": _DAY,
    "week": _WEEK,
    "weeks": _WEEK,
    "month": _MONTH,
    "months": _MONTH,
    "year": _YEAR,
    "years": _YEAR,
}
# "3h", "30p", "1h30", "10min", "2hrs" written as one token.
_COMPACT_RE: Final = re.compile(
    r"(\d{1,3})(h|g|p|ph|m|min|mins|hr|hrs|d|tiếng|tieng|giờ|gio|phút|phut|ngày|ngay)"
    r"(?:(\d{1,2})(?:p|ph|m|min|phút|phut)?)?"
)
_COMPACT_UNITS: Final[Mapping[str, tuple[float, str]]] = {
    **{u: _HOUR for u in ("h", "g", "hr", "hrs", "tiếng", "tieng", "giờ", "gio")},
    **{u: _MIN for u in ("p", "ph", "m", "min", "mins", "phút", "phut")},
    **{u: _DAY for u in ("d", "ngày", "ngay")},
}

# Vietnamese number words. Without diacritics "tu" is "từ" (since) and "tam" is "tầm" (about)
# more often than four and eight, so those two count only when written with their marks.
_VI_NUMBERS_ACCENTED: Final[Mapping[str, float]] = {
    "một": 1,
    "mốt": 1,
    "hai": 2,
    "ba": 3,
    "bốn": 4,
    "tư": 4,
    "năm": 5,
    "lăm": 5,
    "sáu": 6,
    "bảy": 7,
    "bẩy": 7,
    "tám": 8,
    "chín": 9,
    "mười": 10,
    "mươi": 10,
}
_VI_NUMBERS_PLAIN: Final[Mapping[str, float]] = {
    "mot": 1,
    "hai": 2,
    "ba": 3,
    "bon": 4,
    "nam": 5,
    "lam": 5,
    "sau": 6,
    "bay": 7,
    "chin": 9,
    "muoi": 10,
}
_TENS_WORDS: Final = frozenset({"mười", "mươi", "muoi"})
_HALF_WORDS: Final = frozenset({"nửa", "nua"})
_FEW_WORDS: Final = frozenset({"vài", "mấy", "ít", "dăm", "vai", "may", "it"})
_HALF_AFTER: Final = frozenset({"rưỡi", "ruoi"})
_EN_NUMBERS: Final[Mapping[str, float]] = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "ninety": 90,
}
_EN_FEW: Final = frozenset({"few", "several"})

Bound = Literal["about", "over", "under"]
# Words before the number that bound it: "khoảng 15 phút", "hơn 1 tiếng", "nearly an hour".
_BOUNDS: Final[Mapping[tuple[str, ...], Bound]] = {
    ("khoảng",): "about",
    ("khoang",): "about",
    ("chừng",): "about",
    ("chung",): "about",
    ("tầm",): "about",
    ("tam",): "about",
    ("độ",): "about",
    ("cỡ",): "about",
    ("about",): "about",
    ("around",): "about",
    ("roughly",): "about",
    ("approximately",): "about",
    ("hơn",): "over",
    ("hon",): "over",
    ("trên",): "over",
    ("over",): "over",
    ("more", "than"): "over",
    ("gần",): "under",
    ("gan",): "under",
    ("dưới",): "under",
    ("chưa", "tới"): "under",
    ("chưa", "đến"): "under",
    ("nearly",): "under",
    ("almost",): "under",
    ("under",): "under",
    ("less", "than"): "under",
}
_CACH_DAY: Final = frozenset({("cách", "đây"), ("cach", "day")})
_BEFORE: Final = frozenset({"trước", "truoc", "trc"})
_HERE: Final = frozenset({"đây", "day"})
# "… trước" followed by these is "in front of" or "before (something else)", not "ago".
_NOT_AGO_ACCENTED: Final = frozenset(
    {
        "nhà",
        "cửa",
        "cổng",
        "mặt",
        "chợ",
        "quán",
        "trường",
        "ngõ",
        "hẻm",
        "kiệt",
        "tiệm",
        "sân",
        "bến",
        "khu",
        "ủy",
        "bệnh",
        "trụ",
        "đình",
        "chùa",
        "tòa",
        "siêu",
        "hàng",
        "khách",
        "ga",
        "khi",
        "đó",
        "lúc",
    }
)
_NOT_AGO_PLAIN: Final = frozenset(
    {
        "nha",
        "cua",
        "cong",
        "quan",
        "truong",
        "ngo",
        "hem",
        "kiet",
        "tiem",
        "san",
        "khu",
        "ubnd",
        "benh",
        "tru",
        "dinh",
        "toa",
        "sieu",
        "khach",
        "ga",
        "khi",
        "do",
        "luc",
    }
)
_HOURS_ALONE: Final = frozenset({"tiếng", "giờ", "tieng", "gio"})
_PLACEHOLDER: Final = Token("\u2039time\u203a", "\u2039time\u203a")


@dataclass(frozen=True, slots=True)
class Elapsed:
    """One quantity of time ago read in a phrase: tokens ``[start, end)`` of ``phrase``."""

    phrase: int
    start: int
    end: int
    text: str
    minutes: float
    unit: str
    bound: Bound | None = None
    few: bool = False

    @property
    def recent(self) -> bool:
        """Within about the last hour (TRIAGE.md), so still "now" for priority."""
        if self.bound == "over":
            return self.minutes < RECENT_MINUTES
        return self.minutes <= RECENT_MINUTES

    @property
    def signal(self) -> str:
        """The time signal this reading raises: ``just`` or ``past``."""
        return "just" if self.recent else "past"

    @property
    def amount(self) -> str:
        """What was read, in a fixed form: "3 h", "30 min", "over 1 h", "a few days"."""
        label = self.unit
        if self.few:
            return f"a few {label if label in ('min', 'h') else label + 's'}"
        if self.minutes < RECENT_MINUTES:
            label = "min"
        size = _UNIT_MINUTES[label]
        value = round(self.minutes / size, 1)
        if label not in ("min", "h") and value != 1:
            label += "s"
        prefix = {"over": "over ", "under": "nearly ", "about": "about ", None: ""}[self.bound]
        return f"{prefix}{value:g} {label}"

    def reason(self) -> str:
        """The reason line quoting the reading."""
        return f"time: '{self.text}' → {self.amount} ago: {'now' if self.recent else 'past'}"


def _unit(token: Token) -> tuple[float, str] | None:
    if token.plain:
        return _UNITS_PLAIN.get(token.text)
    return _UNITS_ACCENTED.get(token.text)


def _vi_number(token: Token) -> float | None:
    if token.plain:
        return _VI_NUMBERS_PLAIN.get(token.text)
    return _VI_NUMBERS_ACCENTED.get(token.text)


def _texts(phrase: Phrase, start: int, end: int) -> tuple[str, ...]:
    return tuple(t.text for t in phrase[max(0, start) : end])


def _number_before(phrase: Phrase, unit: int) -> tuple[int, float, bool] | None:
    """``(start, value, few)`` of the number just before token ``unit``, if there is one."""
    j = unit - 1
    if j < 0:
        return None
    word = phrase[j].text
    if word.isdigit():
        start, value = j, float(word)
        if j >= 1 and phrase[j - 1].text.isdigit() and float(phrase[j - 1].text) < value:
            start = j - 1  # a range, "2 3 tiếng": the larger bound decides
        return start, value, False
    # English: "an hour", "half an hour", "a couple of hours", "a few minutes", "twenty five".
    if word in ("a", "an"):
        if j >= 1 and phrase[j - 1].text == "half":
            return j - 1, 0.5, False
        return j, 1.0, False
    if word == "of" and j >= 1 and phrase[j - 1].text == "couple":
        start = j - 2 if j >= 2 and phrase[j - 2].text == "a" else j - 1
        return start, 2.0, False
    if word in _EN_FEW:
        start = j - 1 if j >= 1 and phrase[j - 1].text == "a" else j
        return start, 3.0, True
    if word in _EN_NUMBERS:
        value = _EN_NUMBERS[word]
        if value < 10 and j >= 1 and _EN_NUMBERS.get(phrase[j - 1].text, 0) >= 20:
            return j - 1, _EN_NUMBERS[phrase[j - 1].text] + value, False
        return j, value, False
    # Vietnamese: "nửa tiếng", "vài phút", "mười lăm phút", "hai mươi phút", "hai ba tiếng".
    if word in _HALF_WORDS:
        return j, 0.5, False
    if word in _FEW_WORDS:
        return j, 3.0, True
    if _vi_number(phrase[j]) is None:
        return None
    start = j
    while start > 0 and j - start < 2 and _vi_number(phrase[start - 1]) is not None:
        start -= 1
    total = 0.0
    previous: float | None = None
    for token in phrase[start:unit]:
        digit = _vi_number(token)
        assert digit is not None
        if token.text in _TENS_WORDS:
            total = 10.0 if total == 0 else total * 10
        elif previous is not None and previous < 10 and digit == previous + 1:
            total = digit  # "hai ba tiếng": two or three hours
        else:
            total += digit
        previous = digit
    return start, total, False


def _bound_before(phrase: Phrase, start: int) -> tuple[int, Bound | None]:
    for size in (2, 1):
        bound = _BOUNDS.get(_texts(phrase, start - size, start))
        if bound is not None and start - size >= 0:
            return start - size, bound
    return start, None


def _ago_after(phrase: Phrase, k: int) -> int | None:
    """End of "trước [đây]" / "ago" at token ``k`` when it means "ago", else None."""
    if k >= len(phrase):
        return None
    token = phrase[k]
    if token.text == "ago":
        return k + 1
    if token.text not in _BEFORE:
        return None
    if k + 1 < len(phrase):
        following = phrase[k + 1]
        if following.text in _HERE:
            return k + 2
        blocked = _NOT_AGO_PLAIN if following.plain else _NOT_AGO_ACCENTED
        if following.text in blocked:
            return None
    return k + 1


def _read_at(phrase: Phrase, u: int) -> tuple[int, int, float, str, Bound | None, bool] | None:
    """A reading whose unit is token ``u``: ``(start, end, minutes, unit, bound, few)``."""
    token = phrase[u]
    compact = _COMPACT_RE.fullmatch(token.text) if token.text[:1].isdigit() else None
    few = numberless = False
    if compact is not None:
        size, unit_label = _COMPACT_UNITS[compact.group(2)]
        minutes = float(compact.group(1)) * size
        if compact.group(3):
            minutes += float(compact.group(3))
        start = u
    else:
        found_unit = _unit(token)
        if found_unit is None:
            return None
        size, unit_label = found_unit
        number = _number_before(phrase, u)
        if number is None:
            # "tầm tiếng trước", "cách đây tiếng rưỡi": an hour, said without "một".
            if token.text not in _HOURS_ALONE:
                return None
            start, minutes, numberless = u, size, True
        else:
            start, value, few = number
            minutes = value * size
    k = u + 1
    texts = _texts(phrase, k, k + 3)
    if texts[:1] and texts[0] in _HALF_AFTER:
        minutes += size / 2
        k += 1
    elif texts == ("and", "a", "half"):
        minutes += size / 2
        k += 3
    elif texts[:2] in (("đồng", "hồ"), ("dong", "ho")):
        k += 2
    if size == _HOUR[0] and k + 1 < len(phrase) and phrase[k].text.isdigit():
        extra = _unit(phrase[k + 1])
        if extra is not None and extra[0] == _MIN[0]:
            minutes += float(phrase[k].text)
            k += 2
    start, bound = _bound_before(phrase, start)
    if numberless and bound is None and k == u + 1:
        return None  # "giờ trước", "cách đây tiếng súng": no quantity at all
    cach = _texts(phrase, start - 2, start) in _CACH_DAY and start >= 2
    end = _ago_after(phrase, k)
    if end is None:
        if not cach:
            return None
        end = k
    if cach:
        start -= 2
    return start, end, minutes, unit_label, bound, few


def read_elapsed(phrases: Sequence[Phrase]) -> list[Elapsed]:
    """Every quantity of time ago in the phrases, in text order, without overlaps."""
    out: list[Elapsed] = []
    for p, phrase in enumerate(phrases):
        taken = 0
        for u in range(len(phrase)):
            if u < taken:
                continue
            reading = _read_at(phrase, u)
            if reading is None:
                continue
            start, end, minutes, unit, bound, few = reading
            if start < taken:
                continue
            text = " ".join(t.text for t in phrase[start:end])
            out.append(Elapsed(p, start, end, text, minutes, unit, bound, few))
            taken = end
    return out


def hide_elapsed(phrases: Sequence[Phrase], readings: Sequence[Elapsed]) -> list[Phrase]:
    """Phrases with each reading replaced by one neutral token, so that its words ("cách
    đây", "phút trước", "days ago") do not raise fixed time signals of their own; phrase
    indices are kept, so distances between cues stay right."""
    if not readings:
        return list(phrases)
    by_phrase: dict[int, list[Elapsed]] = {}
    for reading in readings:
        by_phrase.setdefault(reading.phrase, []).append(reading)
    out: list[Phrase] = []
    for p, phrase in enumerate(phrases):
        cuts = by_phrase.get(p)
        if not cuts:
            out.append(phrase)
            continue
        tokens: list[Token] = []
        position = 0
        for reading in sorted(cuts, key=lambda r: r.start):
            tokens.extend(phrase[position : reading.start])
            tokens.append(_PLACEHOLDER)
            position = reading.end
        tokens.extend(phrase[position:])
        out.append(tuple(tokens))
    return out


def with_elapsed(signals: Cues, readings: Sequence[Elapsed]) -> Cues:
    """``signals`` plus the time signals of ``readings``; the first reading of each signal is
    the phrase quoted for it, with its reading as the reason."""
    if not readings:
        return signals
    found = dict(signals.found)
    where = {name: list(at) for name, at in signals.where.items()}
    notes = dict(signals.notes)
    for reading in readings:
        name = reading.signal
        if name not in notes:
            found[name] = reading.text
            notes[name] = reading.reason()
        where.setdefault(name, []).append(reading.phrase)
    return Cues(
        found,
        {k: v for k, v in signals.negated.items() if k not in found},
        {k: tuple(sorted(set(v))) for k, v in where.items()},
        notes,
    )
