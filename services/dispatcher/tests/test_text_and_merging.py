"""Similarity, acknowledgement replies, and the merge decision over the working set."""

from __future__ import annotations

from datetime import timedelta

from hotline.contracts.labels import Category, District, Priority
from hotline_dispatcher.merging import IndexView, OpenCase, OpenCaseIndex
from hotline_dispatcher.testing import local
from hotline_dispatcher.text import fold, parse_acknowledgement, significant_words, similarity

AT = local(2024, 1, 24, 9)
WINDOW = timedelta(hours=2)
FOLLOWUP = timedelta(hours=24)


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


def _find(view: IndexView, text: str, **kw: object) -> object:
    args: dict[str, object] = {
        "reporter_key": "tel:84900000002",
        "category": Category.FIRE_RESCUE,
        "location": District.HUE_CITY,
        "words": significant_words(text),
        "at": AT + timedelta(minutes=10),
        "window": WINDOW,
        "followup_window": FOLLOWUP,
        "threshold": 0.5,
    }
    args.update(kw)
    return view.find(**args)  # type: ignore[arg-type]


def test_merge_and_no_merge_decisions() -> None:
    index = OpenCaseIndex()
    index.put(_case("HUE-20240124-0001", "Cháy nhà ở kiệt 5 Lê Lợi"))
    view = IndexView(index)
    match = _find(view, "chay nha kiet 5 le loi, khoi den")
    assert match is not None and match.reason == "same_incident"  # type: ignore[attr-defined]
    # different district, different category, dissimilar text, outside the window: no merge
    assert _find(view, "chay nha kiet 5 le loi", location=District.PHU_LOC) is None
    assert _find(view, "chay nha kiet 5 le loi", category=Category.TRAFFIC) is None
    assert _find(view, "cháy rừng ở Bạch Mã, lửa lan rộng") is None
    assert _find(view, "chay nha kiet 5 le loi", at=AT + timedelta(hours=3)) is None
    # no district: never merged across citizens
    assert _find(view, "chay nha kiet 5 le loi", location=None) is None


def test_the_same_citizen_joins_their_own_case_whatever_they_write() -> None:
    index = OpenCaseIndex()
    index.put(_case("HUE-20240124-0001", "Cháy nhà ở kiệt 5 Lê Lợi"))
    view = IndexView(index)
    match = _find(
        view,
        "mọi người ra ngoài hết rồi",
        reporter_key="tel:84900000001",
        category=Category.OTHER,
        location=None,
    )
    assert match is not None and match.reason == "followup"  # type: ignore[attr-defined]
    late = _find(view, "xin chào", reporter_key="tel:84900000001", at=AT + timedelta(days=2))
    assert late is None


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
    a = significant_words("Trộm xe máy ở đường Lê Lợi số 12")
    b = significant_words("trom xe may tren duong Hung Vuong so 40")
    c = significant_words("vừa bị trộm xe máy trước nhà số 12 Lê Lợi")
    assert similarity(a, b) < 0.5
    assert similarity(a, c) >= 0.5
    fire_a = significant_words("Có cháy lớn gần chợ Đông Ba")
    fire_b = significant_words("Cháy ở chợ Đông Ba, lửa bốc cao")
    assert similarity(fire_a, fire_b) >= 0.5
