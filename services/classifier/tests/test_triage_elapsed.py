"""Quantities of time ago ("cách đây 3 tiếng", "3h trc", "2 hours ago") and what they do to
priority: TRIAGE.md's "within about the last hour" is now, anything longer is past."""

from __future__ import annotations

import pytest

from hotline_classifier.elapsed import Elapsed, read_elapsed
from hotline_classifier.engine import TriageEngine
from hotline_classifier.normalize import ABBREVIATIONS, normalize
from hotline_classifier.phrases import expand_phrases, split_phrases


def readings(text: str) -> list[Elapsed]:
    norm = normalize(text)
    phrases = split_phrases(norm.folded)
    if norm.language == "vi":
        phrases = expand_phrases(phrases, ABBREVIATIONS)
    return read_elapsed(phrases)


@pytest.fixture(scope="module")
def engine() -> TriageEngine:
    return TriageEngine.load()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("cách đây 3 tiếng em bị trộm xe", "time: 'cách đây 3 tiếng' → 3 h ago: past"),
        ("em bi trom xe 3 tieng truoc", "time: '3 tieng truoc' → 3 h ago: past"),
        ("cach day 2 gio em bi giat tui", "time: 'cach day 2 gio' → 2 h ago: past"),
        ("em bi giat dt 3h trc", "time: '3h trước' → 3 h ago: past"),
        ("mất xe 1h30 trc", "time: '1h30 trước' → 1.5 h ago: past"),
        ("bị móc túi 30p trước", "time: '30p trước' → 30 min ago: now"),
        ("em bị giật túi 10 phút trước", "time: '10 phút trước' → 10 min ago: now"),
        ("cách đây khoảng 15 phút", "time: 'cách đây khoảng 15 phút' → about 15 min ago: now"),
        ("cách đây nửa tiếng", "time: 'cách đây nửa tiếng' → 30 min ago: now"),
        ("cách đây 1 tiếng rưỡi", "time: 'cách đây 1 tiếng rưỡi' → 1.5 h ago: past"),
        ("cách đây tiếng rưỡi", "time: 'cách đây tiếng rưỡi' → 1.5 h ago: past"),
        ("tầm tiếng trước", "time: 'tầm tiếng trước' → about 1 h ago: now"),
        ("cach day 1 tieng 30 phut", "time: 'cach day 1 tieng 30 phut' → 1.5 h ago: past"),
        ("hơn 1 tiếng trước", "time: 'hơn 1 tiếng trước' → over 1 h ago: past"),
        ("1 tiếng trước", "time: '1 tiếng trước' → 1 h ago: now"),
        ("mười lăm phút trước", "time: 'mười lăm phút trước' → 15 min ago: now"),
        ("vài tiếng trước", "time: 'vài tiếng trước' → a few h ago: past"),
        ("cách đây 2 ngày", "time: 'cách đây 2 ngày' → 2 days ago: past"),
        ("3 ngày trước đây", "time: '3 ngày trước đây' → 3 days ago: past"),
        ("My phone was stolen 3 hours ago", "time: '3 hours ago' → 3 h ago: past"),
        ("stolen 20 minutes ago", "time: '20 minutes ago' → 20 min ago: now"),
        ("stolen half an hour ago", "time: 'half an hour ago' → 30 min ago: now"),
        ("stolen an hour ago", "time: 'an hour ago' → 1 h ago: now"),
        ("stolen an hour and a half ago", "time: 'an hour and a half ago' → 1.5 h ago: past"),
        ("stolen a couple of hours ago", "time: 'a couple of hours ago' → 2 h ago: past"),
        ("stolen forty five minutes ago", "time: 'forty five minutes ago' → 45 min ago: now"),
        ("stolen two days ago", "time: 'two days ago' → 2 days ago: past"),
    ],
)
def test_quantities_are_read(text: str, reason: str) -> None:
    found = readings(text)
    assert [r.reason() for r in found] == [reason]


@pytest.mark.parametrize(
    "text",
    [
        "nghe 2 tiếng súng trước nhà",  # two gunshots in front of the house
        "cách đây tiếng súng",
        "nghe tiếng trước cửa",
        "xe đậu 2 ngày trước cổng",  # in front of the gate
        "2 ngày trước khi đi",  # before leaving
        "hẹn lúc 3h chiều",  # a clock time
        "tu hom truoc",  # "từ hôm trước": since the other day (fixed phrase, not a quantity)
        "bây giờ vẫn đang đánh",
        "I will be there in 3 hours",
    ],
)
def test_what_is_not_a_time_ago(text: str) -> None:
    assert readings(text) == []


@pytest.mark.parametrize(
    ("text", "priority", "reason"),
    [
        ("cách đây 3 tiếng em bị trộm xe", "P3", "time: 'cách đây 3 tiếng' → 3 h ago: past"),
        ("em bi trom xe 3 tieng truoc", "P3", "time: '3 tieng truoc' → 3 h ago: past"),
        ("em bi giat dt 3h trc", "P3", "time: '3h trước' → 3 h ago: past"),
        ("My phone was stolen 3 hours ago", "P3", "time: '3 hours ago' → 3 h ago: past"),
        ("My phone was stolen 20 minutes ago", "P2", "time: '20 minutes ago' → 20 min ago: now"),
        (
            "My phone was stolen half an hour ago",
            "P2",
            "time: 'half an hour ago' → 30 min ago: now",
        ),
        (
            "cách đây 15 phút em bị móc túi ở chợ",
            "P2",
            "time: 'cách đây 15 phút' → 15 min ago: now",
        ),
        (
            "Tôi bị lừa chuyển 50 triệu cách đây 3 ngày",
            "P3",
            "time: 'cách đây 3 ngày' → 3 days ago: past",
        ),
    ],
)
def test_theft_and_scams_are_p2_within_the_hour_and_p3_after(
    engine: TriageEngine, text: str, priority: str, reason: str
) -> None:
    result = engine.triage(text)
    assert result.category in ("theft", "fraud")
    assert result.priority == priority
    assert reason in result.reasons
    # "cách đây" on its own says "just now"; with a quantity, only the reading is quoted.
    assert not any(r.endswith("'cách đây' → now") for r in result.reasons)


def test_a_recent_quantity_does_not_hide_a_danger_now(engine: TriageEngine) -> None:
    result = engine.triage("cách đây 10 phút có 2 thằng cầm dao đuổi chém nhau ở cầu Trường Tiền")
    assert (result.category, result.priority) == ("violence", "P1")
