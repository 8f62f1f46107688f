"""Where an incident happens: district code from a gazetteer of unambiguous place names.

The gazetteer (``data/gazetteer.yaml``) is configuration; this module holds the reading rules
of TRIAGE.md:

* whole place names within one phrase, with or without diacritics, any case;
* ``huong`` written without diacritics before a place is the word "hướng" (towards), not the
  town of Hương Thủy/Hương Trà/Hương Phú;
* the incident place wins over the sender's residence, which wins over a place the suspect
  was merely heading towards; a place the suspect fled to or hides in is never the location;
* a page pretending to be the police names no district.

Each district lists its own ``names`` (the unit itself: "huyện Phú Vang", "ở Huế") apart from
the ``places`` inside it (communes, wards, landmarks, streets). Both locate the district; only a
place inside it becomes the result's ``locality``, which the dispatcher uses to keep reports
from two communes of one district apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

import yaml

from .labels import DISTRICTS, District
from .normalize import fold, strip_diacritics
from .phrases import Match, Phrase, PhraseMatcher

DEFAULT_GAZETTEER: Final = "gazetteer.yaml"

# Ranks of a place mention; the highest-ranked mention decides, the earliest among equals.
_RANK_INCIDENT: Final = 4
_RANK_RESIDENCE: Final = 3
_RANK_ORIGIN: Final = 2
_RANK_TOWARDS: Final = 1


class GazetteerError(ValueError):
    """The gazetteer file is malformed."""


@dataclass(frozen=True, slots=True)
class Place:
    """A gazetteer entry. ``district`` is None for an ambiguous name (a blocker)."""

    name: str
    district: District | None
    ascii_districts: frozenset[District]
    """Districts of every listed name spelled like this one without diacritics."""
    inside: bool = True
    """A place inside the district (commune, landmark, street), not one of its own names."""


@dataclass(frozen=True, slots=True)
class Location:
    """Result of :meth:`Gazetteer.locate`."""

    district: District | None
    reasons: tuple[str, ...]
    locality: str | None = None
    """The place inside ``district`` that decided it (None when only the district was named)."""


def _cue_set(cues: Sequence[tuple[str, ...]]) -> tuple[frozenset[tuple[str, ...]], int]:
    return frozenset(cues), max(len(c) for c in cues)


# Words (diacritic-free, so they also catch unaccented text) that say how a place relates to
# the incident when they come right before it in the same phrase.
_FLED_CUES: Final = _cue_set(
    (
        ("tron", "ve"),
        ("tron", "vao"),
        ("tron", "ra"),
        ("tron", "len"),
        ("tron", "sang"),
        ("tron", "den"),
        ("bo", "tron"),
        ("lan", "tron"),
        ("tau", "thoat"),
        ("chay", "tron"),
        ("fled",),
        ("escaped",),
        ("hiding",),
        ("hide",),
    )
)
_TOWARDS_CUES: Final = _cue_set(
    (
        ("huong",),
        ("ve", "phia"),
        ("ra", "phia"),
        ("len", "phia"),
        ("xuong", "phia"),
        ("vao", "phia"),
        ("towards",),
        ("toward",),
        ("heading",),
        ("direction",),
    )
)
_RESIDENCE_CUES: Final = _cue_set(
    (
        ("nha", "o"),
        ("nha", "toi", "o"),
        ("nha", "em", "o"),
        ("nha", "tui", "o"),
        ("nha", "minh", "o"),
        ("nha", "con", "o"),
        ("toi", "o"),
        ("em", "o"),
        ("tui", "o"),
        ("con", "o"),
        ("minh", "o"),
        ("que",),
        ("que", "o"),
        ("song", "o"),
        ("thuong", "tru"),
        ("tam", "tru"),
        ("ho", "khau"),
        ("dia", "chi"),
        ("staying",),
        ("live",),
        ("living",),
    )
)
_ORIGIN_CUES: Final = _cue_set((("tu",), ("from",), ("xuat", "phat", "tu")))
# A page or account impersonating the police: the place in its name is not an incident place.
_IMPERSONATION_WORDS: Final = frozenset(
    {"mao", "gia", "fake", "impersonating", "impersonate", "pretending", "fanpage", "page"}
)
_POLICE_WORDS: Final = _cue_set((("cong", "an"), ("police",), ("ca",), ("canh", "sat")))


def _has_cue(
    before: Sequence[str], cues: tuple[frozenset[tuple[str, ...]], int], window: int
) -> bool:
    """A cue ends at most ``window`` words before the place ("trốn về quê ở <place>")."""
    cue_set, longest = cues
    n = len(before)
    for end in range(n, max(n - window, 0) - 1, -1):
        for length in range(1, min(longest, end) + 1):
            if tuple(before[end - length : end]) in cue_set:
                return True
    return False


def _impersonation(phrases: Sequence[Phrase]) -> bool:
    words = [t.ascii for phrase in phrases for t in phrase]
    joined = " ".join(words)
    if "gia mao" in joined or "mao danh" in joined or "gia danh" in joined:
        return True
    return any(w in _IMPERSONATION_WORDS for w in words) and (
        "fake" in words or "impersonating" in words or "pretending" in words
    )


class Gazetteer:
    """Compiled gazetteer: place names → district codes."""

    def __init__(
        self,
        places: Mapping[District, Sequence[str]],
        ambiguous: Sequence[str],
        unit_names: Mapping[District, Sequence[str]] | None = None,
    ) -> None:
        """``places`` lie inside their district; ``unit_names`` name the district itself
        (they locate it too, without a locality)."""
        by_name: dict[str, set[District]] = {}
        display: dict[str, str] = {}
        whole: set[str] = set()
        for source, is_unit in ((places, False), (unit_names or {}, True)):
            for district, names in source.items():
                for name in names:
                    key = fold(name).strip()
                    by_name.setdefault(key, set()).add(district)
                    display.setdefault(key, name)
                    if is_unit:
                        whole.add(key)
        blocked = {fold(name).strip() for name in ambiguous}
        by_ascii: dict[str, set[District]] = {}
        for key, districts in by_name.items():
            by_ascii.setdefault(strip_diacritics(key), set()).update(districts)
        entries: list[tuple[str, Place]] = []
        for key, districts in by_name.items():
            unique = next(iter(districts)) if len(districts) == 1 and key not in blocked else None
            entries.append(
                (
                    key,
                    Place(
                        display[key],
                        unique,
                        frozenset(by_ascii[strip_diacritics(key)]),
                        inside=key not in whole,
                    ),
                )
            )
        for key in blocked - by_name.keys():
            entries.append((key, Place(key, None, frozenset())))
        self._matcher: PhraseMatcher[Place] = PhraseMatcher(entries)
        self.size = len(by_name)

    @classmethod
    def from_mapping(cls, data: object) -> Gazetteer:
        """Build from the parsed YAML document (see ``data/gazetteer.yaml``)."""
        if not isinstance(data, dict) or not isinstance(data.get("districts"), dict):
            raise GazetteerError("gazetteer: expected a mapping with a 'districts' mapping")
        places: dict[District, list[str]] = {}
        unit_names: dict[District, list[str]] = {}
        for code, body in data["districts"].items():
            if code not in DISTRICTS:
                raise GazetteerError(f"gazetteer: unknown district code {code!r}")
            names = body.get("places") if isinstance(body, dict) else None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise GazetteerError(f"gazetteer: district {code!r} needs a list of places")
            own = body.get("names", [])
            if not isinstance(own, list) or not all(isinstance(n, str) for n in own):
                raise GazetteerError(
                    f"gazetteer: district {code!r}: 'names' must be a list of the unit's own names"
                )
            district: District = code
            places[district] = list(names)
            unit_names[district] = list(own)
            if isinstance(body.get("name"), str):
                unit_names[district].append(body["name"])
        ambiguous = data.get("ambiguous", [])
        if not isinstance(ambiguous, list) or not all(isinstance(n, str) for n in ambiguous):
            raise GazetteerError("gazetteer: 'ambiguous' must be a list of names")
        return cls(places, ambiguous, unit_names)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Gazetteer:
        """Load a gazetteer YAML file (default: the packaged Thừa Thiên Huế gazetteer)."""
        if path is None:
            text = (
                resources.files("hotline_classifier")
                .joinpath("data", DEFAULT_GAZETTEER)
                .read_text(encoding="utf-8")
            )
        else:
            text = Path(path).read_text(encoding="utf-8")
        return cls.from_mapping(yaml.safe_load(text))

    def matches(self, phrases: Sequence[Phrase]) -> list[Match[Place]]:
        """Non-overlapping place mentions (longest first), after the "huong" rule."""
        found = self._matcher.find(phrases)
        # "huong <place>" without diacritics: if the words after "huong" are a place by
        # themselves, "huong" is the word "hướng" (towards) and not part of a town name.
        starts = {(m.phrase, m.start) for m in found if m.pattern.payload.district is not None}
        kept = [
            m
            for m in found
            if not (
                phrases[m.phrase][m.start].text == "huong" and (m.phrase, m.start + 1) in starts
            )
        ]
        # Longest first; between equally long overlapping names, the one written with its
        # diacritics ("khúc song hương hữu": Hương Hữu, not the blocked "sông Hương").
        kept.sort(key=lambda m: (-(m.end - m.start), not m.exact, m.phrase, m.start))
        taken: set[tuple[int, int]] = set()
        chosen: list[Match[Place]] = []
        for m in kept:
            span = {(m.phrase, i) for i in range(m.start, m.end)}
            if span & taken:
                continue
            taken |= span
            chosen.append(m)
        chosen.sort(key=lambda m: (m.phrase, m.start))
        return chosen

    def locate(
        self, phrases: Sequence[Phrase], matches: Sequence[Match[Place]] | None = None
    ) -> Location:
        """District where the incident happens (or the person needing help is), or None.

        ``matches`` may pass in :meth:`matches` already computed for these phrases.
        """
        best: tuple[int, int, District, Place] | None = None
        reasons: list[str] = []
        found = self.matches(phrases) if matches is None else matches
        if not found:
            return Location(None, ())
        impersonation = _impersonation(phrases)
        for order, m in enumerate(found):
            place = m.pattern.payload
            district = place.district
            if district is None:
                continue
            if not m.exact and len(place.ascii_districts) > 1:
                # Written without diacritics and spelled like a place in another district.
                continue
            before = [t.ascii for t in phrases[m.phrase][: m.start]]
            if impersonation and _has_cue(before, _POLICE_WORDS, 6):
                reasons.append(f"place: '{place.name}' ignored (page impersonating police)")
                continue
            if _has_cue(before, _FLED_CUES, 4):
                reasons.append(f"place: '{place.name}' ignored (where the suspect fled)")
                continue
            if _has_cue(before, _TOWARDS_CUES, 3):
                rank = _RANK_TOWARDS
            elif _has_cue(before, _RESIDENCE_CUES, 2):
                rank = _RANK_RESIDENCE
            elif _has_cue(before, _ORIGIN_CUES, 0):
                rank = _RANK_ORIGIN
            else:
                rank = _RANK_INCIDENT
            if best is None or rank > best[0]:
                best = (rank, order, district, place)
        if best is None:
            return Location(None, tuple(reasons))
        rank, _, district, chosen = best
        name = chosen.name
        how = {
            _RANK_INCIDENT: "",
            _RANK_RESIDENCE: " (residence)",
            _RANK_ORIGIN: " (origin)",
            _RANK_TOWARDS: " (heading towards)",
        }[rank]
        return Location(
            district,
            (f"place: '{name}' → {district}{how}", *reasons),
            locality=name if chosen.inside else None,
        )
