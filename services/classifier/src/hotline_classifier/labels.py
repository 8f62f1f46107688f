"""Label vocabularies of the triage contract (../shared/TRIAGE.md) as typed literals.

The shared library (``hotline.contracts.labels``) holds the same values as ``StrEnum`` for the
event contracts; the engine works on plain strings so that it stays a pure, dependency-free
function of the text. ``tests/test_labels.py`` fails if the two ever drift apart.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Category = Literal[
    "greeting",
    "traffic",
    "public_order",
    "violence",
    "theft",
    "drugs",
    "gambling",
    "fraud",
    "fire_rescue",
    "environment",
    "officer_conduct",
    "admin_request",
    "other",
]
Priority = Literal["P1", "P2", "P3", "P4"]
District = Literal[
    "hue_city",
    "phong_dien",
    "quang_dien",
    "huong_tra",
    "huong_thuy",
    "phu_vang",
    "phu_loc",
    "nam_dong",
    "a_luoi",
]
Language = Literal["vi", "en", "other"]

CATEGORIES: Final[tuple[Category, ...]] = get_args(Category)
PRIORITIES: Final[tuple[Priority, ...]] = get_args(Priority)
DISTRICTS: Final[tuple[District, ...]] = get_args(District)
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)

# Priorities a non-greeting message can get; P4 is reserved for greetings (TRIAGE.md).
ACTIONABLE_PRIORITIES: Final[tuple[Priority, ...]] = ("P1", "P2", "P3")


def is_category(value: object) -> bool:
    """True when ``value`` is one of the 13 category identifiers."""
    return value in CATEGORIES


def is_priority(value: object) -> bool:
    """True when ``value`` is one of P1..P4."""
    return value in PRIORITIES


def is_district(value: object) -> bool:
    """True when ``value`` is one of the nine district codes."""
    return value in DISTRICTS
