"""Text normalisation and language detection (pure unit tests)."""

from __future__ import annotations

import unicodedata

import pytest

from hotline_classifier.language import detect_language
from hotline_classifier.normalize import MAX_CHARS, fold, normalize, strip_diacritics


def test_nfc_and_case_folding() -> None:
    decomposed = unicodedata.normalize("NFD", "CHÁY NHÀ")
    assert normalize(decomposed).folded == "cháy nhà"


def test_tone_mark_conventions_compare_equal() -> None:
    assert fold("Thuỷ Dương") == fold("Thủy Dương") == "thủy dương"
    assert fold("hoà bình") == fold("hòa bình")
    # Only syllable-final "oa/oe/uy" move: "hoàng" keeps its mark.
    assert fold("Hoàng") == "hoàng"


def test_diacritic_free_form_includes_d_bar() -> None:
    assert strip_diacritics("đường Lê Lợi, Đông Ba") == "duong Le Loi, Dong Ba"
    assert normalize("Có người đánh nhau").ascii == normalize("co nguoi danh nhau").ascii


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ko dc", "không được"),
        ("a oi e vua bi trom", "anh oi em vua bi trom"),
        ("ng ta noi j vs ae", "người ta noi gì với anh em"),
        ("cho e xin sdt", "cho em xin số điện thoại"),
        ("ck em bn tuoi r", "chồng em bao nhiêu tuoi rồi"),
        ("hok biet lam ntn", "không biet lam như thế nào"),
        ("tks a", "cảm ơn anh"),
        ("khong duoc", "không được"),
    ],
)
def test_texting_abbreviations_are_expanded(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


def test_abbreviations_are_not_expanded_inside_words_or_in_english() -> None:
    assert normalize("kho hang").text == "kho hang"
    assert "anh" not in normalize("A man took my bag").text.split()


def test_digits_are_collapsed_and_punctuation_dropped_from_model_text() -> None:
    norm = normalize("Mất 15 triệu, 2tr nữa!!")
    assert norm.text == "mất 0 triệu 0tr nữa ! !"
    assert norm.folded == "mất 15 triệu, 2tr nữa!!"


def test_emoji_only_and_stickers_are_flagged() -> None:
    hearts = normalize("❤️❤️")
    assert hearts.emoji_only
    assert not hearts.has_words
    assert hearts.text == ""
    sticker = normalize("[Sticker]")
    assert sticker.sticker
    assert sticker.emoji_only
    mixed = normalize("Chào anh 👋")
    assert mixed.has_emoji
    assert not mixed.emoji_only
    assert mixed.text == "chào anh"


def test_repeated_letters_are_squeezed() -> None:
    assert normalize("cứuuuuu vớiiii").text == "cứu với"


def test_input_is_truncated_to_the_bound() -> None:
    norm = normalize("a" * (MAX_CHARS + 500))
    assert norm.truncated
    assert norm.length == MAX_CHARS + 500
    assert len(norm.folded) <= MAX_CHARS


def test_none_and_empty_have_no_words() -> None:
    for raw in (None, "", "   ", ".", "..."):
        norm = normalize(raw)
        assert not norm.has_words
        assert norm.text == ""


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Cháy nhà ở Kim Long", "vi"),
        ("co nguoi danh nhau o cho", "vi"),
        ("Hi, can foreigners register for the VNeID app?", "en"),
        ("Someone took my GoPro from our bag at Lang Co", "en"),
        ("안녕하세요. 어제 Lang Co 해변에서 휴대폰을 잃어버렸어요", "other"),
        ("我的护照昨天丢了", "other"),
        ("Bonjour, on nous a volé le sac hier soir", "other"),
        ("", "vi"),
        ("👌", "vi"),
        ("ok", "vi"),
        (".", "vi"),
        ("123", "vi"),
    ],
)
def test_language_detection(text: str, language: str) -> None:
    assert normalize(text).language == language
    assert detect_language(fold(text)) == language
