"""Similarity, acknowledgement replies, and the merge decision over the working set."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hotline.contracts.labels import Category, District, Priority
from hotline_dispatcher.config import load_organisation
from hotline_dispatcher.merging import CALLBACK, IndexView, MergeMatch, OpenCase, OpenCaseIndex
from hotline_dispatcher.testing import local
from hotline_dispatcher.text import fold, parse_acknowledgement, significant_words, similarity

AT = local(2024, 1, 24, 9)
WINDOW = timedelta(hours=2)
FOLLOWUP = timedelta(hours=24)
THRESHOLD = load_organisation().routing.merge.similarity  # what merging uses (0.6)


def test_folding_and_significant_words() -> None:
    assert fold("Chợ Đông Ba") == "cho dong ba"
    words = significant_words("Cháy nhà ở kiệt 5 Lê Lợi, có người kẹt bên trong!")
    assert {"chay", "nha", "kiet", "le", "loi", "ket"} <= words
    assert "co" not in words and "nguoi" not in words
    assert significant_words("chay nha kiet 5 le loi") <= words


def test_similarity_is_the_overlap_of_significant_words() -> None:
    a = significant_words("Cháy nhà ở kiệt 5 Lê Lợi")
    b = significant_words("chay nha kiet 5 le loi khoi bay mu mit")
    c = significant_words("Tai nạn xe máy trên đường Hùng Vương")
    assert similarity(a, b) == 1.0
    assert similarity(a, c) == 0.0
    assert similarity(frozenset(), a) == 0.0


def test_acknowledgement_replies() -> None:
    assert parse_acknowledgement("OK HUE-20240124-0042", "HUE") == "HUE-20240124-0042"
    assert parse_acknowledgement("ok hue-20240124-0042 đang tới", "HUE") == "HUE-20240124-0042"
    assert parse_acknowledgement("Đã nhận HUE-20240124-0042", "HUE") == "HUE-20240124-0042"
    assert parse_acknowledgement("HUE-20240124-0042 ok", "HUE") == "HUE-20240124-0042"
    assert parse_acknowledgement("có cháy ở HUE-20240124-0042", "HUE") is None
    assert parse_acknowledgement("OK", "HUE") is None
    assert parse_acknowledgement("OK DNG-20240124-0042", "HUE") is None


def _case(case_id: str, text: str, **kw: object) -> OpenCase:
    values: dict[str, object] = {
        "case_id": case_id,
        "category": Category.FIRE_RESCUE,
        "location": District.HUE_CITY,
        "priority": Priority.P1,
        "words": significant_words(text),
        "opened_at": AT,
        "last_report_at": AT,
        "reporter_keys": frozenset({"tel:84900000001"}),
        "responsible_unit": "ca-tp-hue",
        "assignee_id": "hue-city-o2",
    }
    values.update(kw)
    return OpenCase(**values)  # type: ignore[arg-type]


def _find(view: IndexView, text: str, **kw: object) -> MergeMatch | None:
    args: dict[str, object] = {
        "reporter_key": "tel:84900000002",
        "category": Category.FIRE_RESCUE,
        "priority": Priority.P1,
        "location": District.HUE_CITY,
        "words": significant_words(text),
        "at": AT + timedelta(minutes=10),
        "window": WINDOW,
        "followup_window": FOLLOWUP,
        "threshold": THRESHOLD,
    }
    args.update(kw)
    return view.find(**args)  # type: ignore[arg-type]


def test_merge_and_no_merge_decisions() -> None:
    index = OpenCaseIndex()
    index.put(_case("HUE-20240124-0001", "Cháy nhà ở kiệt 5 Lê Lợi"))
    view = IndexView(index)
    match = _find(view, "chay nha kiet 5 le loi, khoi den")
    assert match is not None and match.reason == "same_incident"
    # different district, different category, dissimilar text, outside the window: no merge
    assert _find(view, "chay nha kiet 5 le loi", location=District.PHU_LOC) is None
    assert _find(view, "chay nha kiet 5 le loi", category=Category.TRAFFIC) is None
    assert _find(view, "cháy rừng ở Bạch Mã, lửa lan rộng") is None
    assert _find(view, "chay nha kiet 5 le loi", at=AT + timedelta(hours=3)) is None
    # no district: never merged across citizens
    assert _find(view, "chay nha kiet 5 le loi", location=None) is None


VAGUE = {"category": Category.OTHER, "priority": Priority.P3, "location": None}
"""The triage of a message that names no incident and no place ("thanks", "anyone there?")."""


def test_the_same_citizens_additions_follow_up_on_their_own_case() -> None:
    index = OpenCaseIndex()
    index.put(_case("HUE-20240124-0001", "Cháy nhà ở kiệt 5 Lê Lợi"))
    view = IndexView(index)
    match = _find(view, "mọi người ra ngoài hết rồi", reporter_key="tel:84900000001", **VAGUE)
    assert match is not None and match.reason == "followup"
    same = _find(view, "lửa lan sang nhà bên", reporter_key="tel:84900000001")
    assert same is not None and same.reason == "followup"
    late = _find(
        view, "lửa lan sang nhà bên", reporter_key="tel:84900000001", at=AT + timedelta(days=2)
    )
    assert late is None


THEFT_KIM_LONG = {
    "category": Category.THEFT,
    "priority": Priority.P3,
    "location": District.HUE_CITY,
    "responsible_unit": "pc02",
}
CITIZEN = "tel:84900000001"


def _citizens_match_on_theft(
    text: str, category: Category, priority: Priority, location: str | None
) -> MergeMatch | None:
    """What CITIZEN's message matches while their theft case at Kim Long is open."""
    index = OpenCaseIndex()
    index.put(_case("HUE-20240124-0001", "Trộm xe máy ở Kim Long", **THEFT_KIM_LONG))
    return _find(
        IndexView(index),
        text,
        reporter_key=CITIZEN,
        category=category,
        priority=priority,
        location=District(location) if location else None,
    )


@pytest.mark.parametrize(
    ("text", "category", "priority", "location"),
    [
        ("xin hỏi vụ trộm của em thế nào rồi", Category.THEFT, Priority.P3, None),
        ("kẻ trộm lại quay lại Kim Long, đang lảng vảng", Category.THEFT, Priority.P2, "hue_city"),
        ("em bổ sung: xe biển số 75A1-123.45", Category.OTHER, Priority.P3, None),
    ],
)
def test_a_follow_up_is_about_the_same_incident(
    text: str, category: Category, priority: Priority, location: str | None
) -> None:
    match = _citizens_match_on_theft(text, category, priority, location)
    assert match is not None and match.reason == "followup"
    assert match.case.case_id == "HUE-20240124-0001"


@pytest.mark.parametrize(
    ("text", "category", "priority", "location"),
    [
        # another kind of incident, elsewhere, more urgent: the reported case
        ("Cháy nhà ở Lăng Cô, có người mắc kẹt", Category.FIRE_RESCUE, Priority.P1, "phu_loc"),
        # another kind of incident in the same place, or without a place
        ("Có người đánh nhau ở Kim Long", Category.VIOLENCE, Priority.P2, "hue_city"),
        ("Đang có đánh bạc", Category.GAMBLING, Priority.P2, None),
        # the same kind of incident somewhere else
        ("Trộm xe máy ở Lăng Cô", Category.THEFT, Priority.P3, "phu_loc"),
        # `other`, but more urgent than the case, or in another district
        ("Con tôi bị lạc, chưa tìm thấy", Category.OTHER, Priority.P2, None),
        ("Mất giấy tờ ở Lăng Cô", Category.OTHER, Priority.P3, "phu_loc"),
    ],
)
def test_a_new_incident_from_the_same_citizen_is_not_a_follow_up(
    text: str, category: Category, priority: Priority, location: str | None
) -> None:
    match = _citizens_match_on_theft(text, category, priority, location)
    assert match is None


def test_a_citizen_with_several_open_cases_follows_up_on_the_matching_one() -> None:
    index = OpenCaseIndex()
    index.put(_case("HUE-20240124-0001", "Trộm xe máy ở Kim Long", **THEFT_KIM_LONG))
    view = IndexView(index)
    view.put(
        _case(
            "~fire",
            "Cháy nhà ở Lăng Cô, có người mắc kẹt",
            location=District.PHU_LOC,
            responsible_unit="ca-phu-loc",
            last_report_at=AT + timedelta(minutes=5),
        )
    )
    theft = _find(
        view,
        "xin hỏi vụ trộm của em thế nào rồi",
        reporter_key=CITIZEN,
        category=Category.THEFT,
        priority=Priority.P3,
        location=None,
    )
    assert theft is not None and theft.case.case_id == "HUE-20240124-0001"
    fire = _find(view, "đã cứu được người ra", reporter_key=CITIZEN, location=District.PHU_LOC)
    assert fire is not None and fire.case.case_id == "~fire"
    # An addition that names nothing goes to the latest reported case.
    other = _find(view, "cảm ơn các anh", reporter_key=CITIZEN, **VAGUE)
    assert other is not None and other.case.case_id == "~fire"


def test_a_missed_call_joins_only_the_callers_callback_task() -> None:
    index = OpenCaseIndex()
    index.put(_case("HUE-20240124-0001", "Trộm xe máy ở Kim Long", **THEFT_KIM_LONG))
    view = IndexView(index)
    missed = {
        "reporter_key": CITIZEN,
        "category": Category.OTHER,
        "priority": Priority.P2,
        "location": None,
        "kind": CALLBACK,
    }
    assert _find(view, "", **missed) is None  # the report case is not a callback task
    view.put(
        _case(
            "~callback",
            "",
            category=Category.OTHER,
            priority=Priority.P2,
            location=None,
            responsible_unit="pv01",
            kind=CALLBACK,
        )
    )
    again = _find(view, "", **missed)
    assert again is not None and again.case.case_id == "~callback"
    # ... and a written report never joins a callback task.
    text = _find(view, "em vừa gọi mà không ai nghe", reporter_key=CITIZEN, **VAGUE)
    assert text is not None and text.case.case_id == "HUE-20240124-0001"


def test_a_batch_sees_its_own_cases_and_commits_only_when_told() -> None:
    index = OpenCaseIndex()
    view = IndexView(index)
    view.put(_case("~pending", "Cháy nhà ở kiệt 5 Lê Lợi"))
    assert _find(view, "chay nha kiet 5 le loi") is not None
    assert len(index) == 0
    view.commit()
    assert len(index) == 1
    assert _find(IndexView(index), "chay nha kiet 5 le loi") is not None


def test_two_thefts_on_different_streets_do_not_look_alike() -> None:
    threshold = THRESHOLD
    a = significant_words("Trộm xe máy ở đường Lê Lợi số 12")
    b = significant_words("trom xe may tren duong Hung Vuong so 40")
    c = significant_words("vừa bị trộm xe máy trước nhà số 12 Lê Lợi")
    assert similarity(a, b) < threshold
    assert similarity(a, c) >= threshold
    fire_a = significant_words("Có cháy lớn gần chợ Đông Ba")
    fire_b = significant_words("Cháy ở chợ Đông Ba, lửa bốc cao")
    assert similarity(fire_a, fire_b) >= threshold
