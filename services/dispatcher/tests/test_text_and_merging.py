"""Similarity, acknowledgement replies, and the merge decision over the working set."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hotline.contracts.labels import Category, District, Priority
from hotline_dispatcher.config import load_organisation
from hotline_dispatcher.merging import CALLBACK, IndexView, MergeMatch, OpenCase, OpenCaseIndex
from hotline_dispatcher.testing import local
from hotline_dispatcher.text import (
    address_numbers,
    count_places,
    different_addresses,
    fold,
    locality_words,
    parse_acknowledgement,
    same_locality,
    significant_words,
    similarity,
)

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
    return view.lookup(**args).match  # type: ignore[arg-type]


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


# --------------------------------------------------------------------------- where, exactly

FLOOD = "Nước lên nhanh ở {}, nhà tôi có người già và trẻ nhỏ bị mắc kẹt trên mái, cứu với"


def test_locality_words_drop_the_kind_of_place_not_the_name() -> None:
    assert locality_words("chợ Phú Đa") == ("phú", "đa")
    assert locality_words("thị trấn Phú Đa") == ("phú", "đa")
    assert locality_words("sân bay Phú Bài") == ("phú", "bài")
    assert locality_words("Lang Co beach") == ("lang", "co")
    # "vịnh" (bay) is a kind of place; "Vinh" is part of a name.
    assert locality_words("vịnh Lăng Cô") == ("lăng", "cô")
    assert locality_words("Vinh Thanh") == ("vinh", "thanh")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Phú Đa", "chợ Phú Đa", True),
        ("thị trấn Phú Đa", "Phú Đa", True),
        ("Dong Ba market", "chợ Đông Ba", True),  # a gazetteer name written without diacritics
        ("Lang Co beach", "vịnh Lăng Cô", True),
        ("Kinh thành", "Kinh thành Huế", True),
        ("Phú Đa", "Phú Diên", False),
        ("Vinh Thanh", "Vinh Xuân", False),
        ("Quảng Công", "Quảng Lợi", False),
        ("Hương Văn", "Hương Vân", False),  # two communes, told apart by their diacritics
        ("Thủy Dương", "Thủy Phương", False),
    ],
)
def test_same_locality(a: str, b: str, same: bool) -> None:
    assert same_locality(a, b) is same
    assert same_locality(b, a) is same


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Cháy nhà số 12 Lê Lợi", {"house:12"}),
        ("chay nha so 12 le loi", {"house:12"}),
        ("số nhà 15, đường Hùng Vương", {"house:15"}),
        ("trộm ở 12/3 hẻm 7 Phan Chu Trinh, số 12/3", {"house:12/3", "alley:7"}),
        ("cháy nhà 3 tầng ở kiệt 45 Nguyễn Huệ", {"alley:45"}),  # "3 tầng" is not an address
        ("có số 2 người bị thương", set()),
        ("gọi lại số 0905123456", set()),  # a phone number is not a house number
        ("nhà số 7a bị trộm", {"house:7a"}),
        ("nước ngập ở thôn 3 xã Phú Đa", {"hamlet:3"}),
        ("tổ dân phố 5 phường Vỹ Dạ, kiệt 2", {"hamlet:5", "alley:2"}),
        ("xom 2 co 5 ho bi ngap", {"hamlet:2"}),  # "5 hộ" (households) is a count
    ],
)
def test_address_numbers(text: str, numbers: set[str]) -> None:
    assert address_numbers(text) == numbers


def test_names_of_one_place_are_counted_together_under_the_shortest() -> None:
    counts = {"chợ Phú Đa": 1, "Phú Đa": 3, "thị trấn Phú Đa": 1, "Vinh Thanh": 2, "Hương Văn": 2}
    assert count_places({**counts, "Hương Vân": 1}) == [
        ("Phú Đa", 5),
        ("Hương Văn", 2),
        ("Vinh Thanh", 2),
        ("Hương Vân", 1),
    ]
    assert count_places({}) == []


def test_different_addresses_need_two_numbers_of_a_kind_that_disagree() -> None:
    assert different_addresses(frozenset({"house:12"}), frozenset({"house:14"}))
    assert not different_addresses(frozenset({"house:12"}), frozenset({"house:12", "alley:4"}))
    assert not different_addresses(frozenset({"house:12"}), frozenset())
    assert not different_addresses(frozenset({"house:12"}), frozenset({"alley:14"}))
    assert different_addresses(frozenset({"alley:5"}), frozenset({"alley:7", "house:5"}))
    assert different_addresses(frozenset({"hamlet:3"}), frozenset({"hamlet:4"}))


def _flood_case(case_id: str, commune: str | None, **kw: object) -> OpenCase:
    return _case(
        case_id,
        FLOOD.format(commune or "huyện Phú Vang"),
        location=District.PHU_VANG,
        localities=frozenset({commune}) if commune else frozenset(),
        **kw,
    )


def _find_flood(view: IndexView, commune: str | None, **kw: object) -> MergeMatch | None:
    return _find(
        view,
        FLOOD.format(commune or "huyện Phú Vang"),
        location=District.PHU_VANG,
        locality=commune,
        **kw,
    )


def test_reports_alike_but_from_two_communes_are_two_cases() -> None:
    index = OpenCaseIndex()
    index.put(_flood_case("HUE-20240124-0001", "Phú Đa"))
    view = IndexView(index)
    # The texts differ only by the commune: alike enough to merge on words alone.
    words = significant_words(FLOOD.format("Vinh Thanh"))
    assert similarity(words, index.cases["HUE-20240124-0001"].words) >= THRESHOLD
    assert _find_flood(view, "Vinh Thanh") is None
    # ... and the lookup says which case it was kept apart from, and why.
    found = view.lookup(
        reporter_key="tel:84900000002",
        category=Category.FIRE_RESCUE,
        priority=Priority.P1,
        location=District.PHU_VANG,
        words=words,
        at=AT + timedelta(minutes=10),
        window=WINDOW,
        followup_window=FOLLOWUP,
        threshold=THRESHOLD,
        locality="Vinh Thanh",
    )
    assert found.match is None and found.kept_apart is not None
    assert found.kept_apart.case.case_id == "HUE-20240124-0001"
    assert found.kept_apart.reason == "locality"
    assert found.kept_apart.detail == "another place: Vinh Thanh; the case: Phú Đa"
    same = _find_flood(view, "chợ Phú Đa")  # the market of the same commune
    assert same is not None and same.reason == "same_incident"
    assert "(chợ Phú Đa)" in same.detail
    # A report naming only the district may be about any of its communes: it joins.
    assert _find_flood(view, None) is not None


def test_a_case_learns_the_localities_of_its_reports() -> None:
    index = OpenCaseIndex()
    index.put(_flood_case("HUE-20240124-0001", None))  # "ở huyện Phú Vang"
    view = IndexView(index)
    first = _find_flood(view, "Phú Đa")
    assert first is not None  # the district-wide case takes the first commune's report
    view.add_report(first.case.case_id, "tel:84900000002", AT, locality="Phú Đa")
    # ... and is then about Phú Đa: another commune's report opens its own case.
    assert view.get(first.case.case_id).localities == {"Phú Đa"}  # type: ignore[union-attr]
    assert _find_flood(view, "Vinh Thanh") is None
    assert _find_flood(view, "Phú Đa") is not None


def test_reports_giving_two_house_numbers_are_two_cases() -> None:
    index = OpenCaseIndex()
    text = "Trộm xe máy ở nhà số 12 đường Lê Lợi"
    index.put(
        _case("HUE-20240124-0001", text, category=Category.THEFT, addresses=address_numbers(text))
    )
    view = IndexView(index)

    def find(other: str) -> MergeMatch | None:
        return _find(view, other, category=Category.THEFT, addresses=address_numbers(other))

    assert find("trom xe may o nha so 14 duong le loi") is None
    assert find("trộm xe máy nhà số 12 đường Lê Lợi, vừa xong") is not None
    assert find("trộm xe máy đường Lê Lợi") is not None  # no number: no reason to split


def test_a_citizens_report_from_another_commune_is_not_a_follow_up() -> None:
    index = OpenCaseIndex()
    index.put(_flood_case("HUE-20240124-0001", "Phú Đa"))
    view = IndexView(index)
    own = {"reporter_key": "tel:84900000001"}  # the case's own reporter
    assert _find_flood(view, "Vinh Xuân", **own) is None
    match = _find_flood(view, "chợ Phú Đa", **own)
    assert match is not None and match.reason == "followup"
    assert _find_flood(view, None, **own) is not None


def test_a_case_document_put_back_keeps_what_the_index_learned() -> None:
    index = OpenCaseIndex()
    opened = _flood_case("HUE-20240124-0001", None)
    index.put(opened)
    view = IndexView(index)
    view.add_report(opened.case_id, "tel:84900000002", AT, locality="Phú Đa")
    view.commit()
    # Reassigned: the case document (the opening report's facts) is put back.
    index.update(replace(opened, assignee_id="phu-vang-o2"))
    kept = index.cases[opened.case_id]
    assert kept.assignee_id == "phu-vang-o2" and kept.localities == {"Phú Đa"}
    assert kept.reporter_keys == {"tel:84900000001", "tel:84900000002"}
    # Moved to another district: the places of the old one are dropped.
    index.update(replace(opened, location=District.HUONG_THUY))
    assert index.cases[opened.case_id].localities == frozenset()


@given(st.text(max_size=400), st.text(max_size=60), st.text(max_size=60))
@example("số 99999 nhà 1/2/3/4/5", "Phú Phú", "Phú Đa")  # repeated words: symmetric still
def test_where_helpers_take_any_text(text: str, a: str, b: str) -> None:
    """Texts and localities come from citizens and from the topic: whatever they hold, the
    helpers answer (no exception), and numbers are only ever well-formed kinds."""
    numbers = address_numbers(text)
    assert all(n.split(":")[0] in {"house", "alley", "hamlet"} for n in numbers)
    assert same_locality(a, b) == same_locality(b, a)
    assert same_locality(a, a)
    count_places({a: 1, b: 2})
