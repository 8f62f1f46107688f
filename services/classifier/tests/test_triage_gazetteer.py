"""Gazetteer matching and the location rules of TRIAGE.md (pure unit tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline_classifier.gazetteer import Gazetteer, GazetteerError
from hotline_classifier.normalize import normalize
from hotline_classifier.phrases import split_phrases


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.load()


def locate(gazetteer: Gazetteer, text: str) -> str | None:
    return gazetteer.locate(split_phrases(normalize(text).folded)).district


@pytest.mark.parametrize(
    ("text", "district"),
    [
        ("bị móc túi ở chợ Đông Ba", "hue_city"),
        ("bi moc tui o cho dong ba", "hue_city"),
        ("CHỢ ĐÔNG BA", "hue_city"),
        ("tai nan o PHU LOC", "phu_loc"),
        ("o Lang Co co nhom thanh nien", "phu_loc"),
        ("tắm biển Lăng Cô", "phu_loc"),
        ("gần cầu Trường Tiền", "hue_city"),
        ("ở Thuận An", "hue_city"),
        ("Điền Hải", "phong_dien"),
        ("mua dua ghe o Sia", "quang_dien"),
        ("chợ Tứ Hạ", "huong_tra"),
        ("sân bay Phú Bài", "huong_thuy"),
        ("Thuỷ Dương", "huong_thuy"),
        ("Vinh Thanh", "phu_vang"),
        ("Khe Tre", "nam_dong"),
        ("gần A Roàng", "a_luoi"),
        ("near A Luoi town", "a_luoi"),
        ("đường Lê Lợi", "hue_city"),
        ("Phu Bai airport", "huong_thuy"),
        ("không nói ở đâu", None),
    ],
)
def test_places_with_and_without_diacritics_any_case(
    gazetteer: Gazetteer, text: str, district: str | None
) -> None:
    assert locate(gazetteer, text) == district


def test_punctuation_separates_phrases(gazetteer: Gazetteer) -> None:
    # TRIAGE.md: "…cua lang, co…" does not name Lăng Cô.
    assert locate(gazetteer, "e dang o le hoi cua lang, co nhom thanh nien say xin") is None
    assert locate(gazetteer, "lễ hội của làng, có nhóm thanh niên") is None


def test_words_written_with_other_diacritics_do_not_match(gazetteer: Gazetteer) -> None:
    # "làng có" is not "Lăng Cô" once diacritics are written.
    assert locate(gazetteer, "trong làng có nhóm thanh niên") is None
    assert locate(gazetteer, "đầu làng có quán nhậu") is None


def test_huong_before_a_place_means_towards(gazetteer: Gazetteer) -> None:
    # "chay huong Thuy Xuan" is towards Thủy Xuân (hue_city), not the town of Hương Thủy.
    assert locate(gazetteer, "no chay huong Thuy Xuan") == "hue_city"
    # "hướng Phú Bài" must not read as the commune Hương Phú (Nam Đông).
    assert locate(gazetteer, "đi huong Phu Bai") == "huong_thuy"
    assert locate(gazetteer, "o Huong Phu") == "nam_dong"
    assert locate(gazetteer, "ở Hương Thủy") == "huong_thuy"


def test_incident_place_wins_over_where_the_suspect_heads(gazetteer: Gazetteer) -> None:
    text = "Thằng trộm vừa lấy xe ở chợ Đông Ba rồi chạy về hướng Phú Bài"
    assert locate(gazetteer, text) == "hue_city"
    # With no other place, the direction of flight near the scene is all the text gives.
    assert locate(gazetteer, "ô tô tông xe đạp rồi bỏ chạy về hướng Vỹ Dạ") == "hue_city"


def test_a_place_the_suspect_fled_to_is_never_the_location(gazetteer: Gazetteer) -> None:
    assert locate(gazetteer, "thằng trộm xe nhà tôi đã trốn về quê ở A Lưới") is None
    assert locate(gazetteer, "Kẻ trộm lấy máy bơm ở Lộc Điền, đã bỏ trốn về A Lưới") == "phu_loc"


def test_incident_place_wins_over_residence(gazetteer: Gazetteer) -> None:
    text = "Tôi ở Phú Bài, sáng nay lên chợ Đông Ba bị móc túi"
    assert locate(gazetteer, text) == "hue_city"
    assert locate(gazetteer, "Nhà em ở Phong Hiền, bà em vừa bị lừa 5 chỉ vàng") == "phong_dien"


def test_a_victim_sheltering_somewhere_gives_the_location(gazetteer: Gazetteer) -> None:
    assert locate(gazetteer, "con tôi đang trốn ở nhà bạn ở Quảng Thái") == "quang_dien"


def test_page_impersonating_police_names_no_district(gazetteer: Gazetteer) -> None:
    assert locate(gazetteer, "Trang Facebook giả mạo Công an thành phố Huế đòi nộp phạt") is None
    assert locate(gazetteer, "fanpage mạo danh Công an huyện Phú Lộc") is None
    assert locate(gazetteer, "Trang giả mạo Công an tỉnh Thừa Thiên Huế") is None
    # A real police unit named in a complaint still locates it.
    assert locate(gazetteer, "Công an phường Phú Hội thu tiền không biên lai") == "hue_city"


def test_ambiguous_names_are_not_matched(gazetteer: Gazetteer) -> None:
    for text in (
        "ở Huế",  # bare "Huế" is not, "ở Huế" is: see below
        "Công an tỉnh Thừa Thiên Huế",
        "Chúc các anh thượng lộ bình an",  # idiom, not the commune Thượng Lộ
        "quê em ở Phú Xuân",
        "trên quốc lộ 1A",
        "ven sông Hương",
        "qua đèo Hải Vân",
    ):
        expected = "hue_city" if text == "ở Huế" else None
        assert locate(gazetteer, text) == expected, text


def test_everyday_phrases_that_spell_places_without_diacritics(gazetteer: Gazetteer) -> None:
    assert locate(gazetteer, "bat thanh toan qua link la") is None  # "thanh toán", not Thanh Toàn
    assert locate(gazetteer, "game bai doi thuong quang cao") is None  # not Thượng Quảng
    assert locate(gazetteer, "bi trom binh dien xe") is None  # not Bình Điền


def test_greeting_that_names_a_place_gets_it(gazetteer: Gazetteer) -> None:
    assert locate(gazetteer, "nha em moi don ve Phu Bai, chao anh") == "huong_thuy"


def test_reasons_name_the_place(gazetteer: Gazetteer) -> None:
    location = gazetteer.locate(split_phrases(normalize("gần chợ Đông Ba").folded))
    assert location.reasons == ("place: 'chợ Đông Ba' → hue_city",)


@pytest.mark.parametrize(
    ("text", "district", "locality"),
    [
        ("Nước lên nhanh ở Phú Đa, có người mắc kẹt", "phu_vang", "Phú Đa"),
        ("nuoc ngap o phu da", "phu_vang", "Phú Đa"),
        ("mất trộm gần chợ Phú Đa", "phu_vang", "chợ Phú Đa"),
        ("tai nan o Lang Co beach", "phu_loc", "Lang Co beach"),
        ("bi moc tui o cho dong ba", "hue_city", "chợ Đông Ba"),
        # The unit's own names locate it without a locality.
        ("Nước lên nhanh ở huyện Phú Vang", "phu_vang", None),
        ("lũ ở Phú Vang", "phu_vang", None),
        ("có cháy ở trung tâm Huế", "hue_city", None),
        ("mưa to ở tp Huế", "hue_city", None),
        ("A Lưới sạt lở", "a_luoi", None),
        ("no place here", None, None),
    ],
)
def test_the_place_inside_the_district_is_the_locality(
    gazetteer: Gazetteer, text: str, district: str | None, locality: str | None
) -> None:
    found = gazetteer.locate(split_phrases(normalize(text).folded))
    assert (found.district, found.locality) == (district, locality)


def test_the_locality_is_the_place_that_decided_the_district(gazetteer: Gazetteer) -> None:
    # The incident place, not the residence named after it.
    found = gazetteer.locate(
        split_phrases(normalize("em ở Vinh Thanh, thấy đánh nhau ở chợ Đông Ba").folded)
    )
    assert (found.district, found.locality) == ("hue_city", "chợ Đông Ba")


def test_gazetteer_loads_from_another_path(tmp_path: Path) -> None:
    path = tmp_path / "gaz.yaml"
    path.write_text(
        "districts:\n"
        "  hue_city:\n    name: Thành Phố\n    names: [Phố Lớn]\n    places: [Chợ Mới, Bến Đò]\n"
        "  phu_loc:\n    places: [Bến Đò, Làng Biển]\n"
        "ambiguous: [Chợ Cũ]\n",
        encoding="utf-8",
    )
    custom = Gazetteer.load(path)
    assert locate(custom, "ở cho moi") == "hue_city"
    for own in ("ở Phố Lớn", "thanh pho"):
        found = custom.locate(split_phrases(normalize(own).folded))
        assert (found.district, found.locality) == ("hue_city", None)
    assert locate(custom, "ở Làng Biển") == "phu_loc"
    # Listed under two districts: ambiguous, never matched.
    assert locate(custom, "ở Bến Đò") is None
    assert locate(custom, "chợ Đông Ba") is None


@pytest.mark.parametrize(
    "document",
    [
        "just text\n",
        "districts: [a, b]\n",
        "districts:\n  atlantis:\n    places: [X]\n",
        "districts:\n  hue_city:\n    places: nope\n",
        "districts:\n  hue_city:\n    names: Huế\n    places: [X]\n",
    ],
)
def test_malformed_gazetteer_is_rejected(tmp_path: Path, document: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(GazetteerError):
        Gazetteer.load(path)
