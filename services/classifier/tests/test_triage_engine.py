"""The engine: rules of TRIAGE.md, result shape, batching, robustness to hostile input."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta, timezone

import pytest

from hotline_classifier.engine import TriageEngine, TriageResult
from hotline_classifier.labels import CATEGORIES, DISTRICTS, LANGUAGES, PRIORITIES

VN = timezone(timedelta(hours=7))


@pytest.fixture(scope="module")
def engine() -> TriageEngine:
    return TriageEngine.load()


def test_result_has_exactly_the_contract_fields(engine: TriageEngine) -> None:
    result = engine.triage("Cháy nhà ở Kim Long, còn người bên trong")
    assert [f.name for f in dataclasses.fields(TriageResult)] == [
        "category",
        "actionable",
        "priority",
        "location",
        "language",
        "confidence",
        "reasons",
        "model_version",
        "locality",  # ours: the gazetteer place inside `location`, for the dispatcher's merging
    ]
    assert result.category == "fire_rescue"
    assert result.priority == "P1"
    assert (result.location, result.locality) == ("hue_city", "Kim Long")
    assert result.language == "vi"
    assert 0.0 <= result.confidence <= 1.0
    assert result.model_version == engine.model_version
    assert result.model_version.startswith("tri-")
    assert any(r.startswith("urgency:") for r in result.reasons)
    assert any(r.startswith("place:") for r in result.reasons)


def test_missed_call_is_other_p2_actionable(engine: TriageEngine) -> None:
    for result in (
        engine.triage("", channel="voice"),
        engine.triage(None, channel="voice", kind="call_missed"),
        engine.triage("", kind="call_missed", channel="sms"),
        engine.triage("", kind="call_missed"),
        engine.triage(None, kind="voicemail"),
    ):
        assert (result.category, result.priority, result.actionable) == ("other", "P2", True)
        assert result.language == "vi"


def test_empty_text_that_is_not_a_call_is_a_greeting(engine: TriageEngine) -> None:
    # TRIAGE.md: empty text is a greeting; only a call without words is P2. An item that names
    # no channel or kind is an ordinary message.
    for result in (
        engine.triage(""),
        engine.triage(None),
        engine.triage("", kind="message"),
        engine.triage(None, channel="sms", kind="message"),
    ):
        assert (result.category, result.priority, result.actionable) == ("greeting", "P4", False)
        assert result.language == "vi"


def test_texts_without_words_are_greetings(engine: TriageEngine) -> None:
    for text in ("👌", "❤️❤️", "[sticker]", ".", "ok", "Ok ạ", "alo alo", "test", "", "  "):
        result = engine.triage(text, channel="zalo")
        assert (result.category, result.priority, result.actionable) == ("greeting", "P4", False)
        assert result.language == "vi"


def test_greeting_with_place_keeps_location(engine: TriageEngine) -> None:
    result = engine.triage("nha em moi don ve Phu Bai, nghe noi co so nay nen nhan chao anh")
    assert (result.category, result.priority) == ("greeting", "P4")
    assert result.location == "huong_thuy"


@pytest.mark.parametrize(
    ("text", "category", "priority"),
    [
        ("Có người cầm dao đang đâm nhau trước quán nhậu, máu chảy nhiều", "violence", "P1"),
        ("co nguoi bi nuoc cuon o song, dang chim", "fire_rescue", "P1"),
        ("Xe tải tông xe máy, người đi xe máy nằm bất tỉnh giữa đường", "traffic", "P1"),
        ("a ơi e vừa bị giật điện thoại ở chợ, nó chạy xe Wave không biển", "theft", "P2"),
        ("Đêm qua nhà em bị trộm cạy cửa lấy mất laptop", "theft", "P3"),
        ("Con trai em 8 tuổi đi chơi từ trưa tới giờ chưa về, cả nhà đang đi tìm", "other", "P2"),
        ("Cho em hỏi làm lại căn cước thì cần giấy tờ gì ạ", "admin_request", "P3"),
        ("Chúc các anh trực Tết vui vẻ, hôm nay chưa có gì", "greeting", "P4"),
    ],
)
def test_typical_messages(engine: TriageEngine, text: str, category: str, priority: str) -> None:
    result = engine.triage(text)
    assert (result.category, result.priority) == (category, priority)


def test_p4_only_and_always_for_greetings(engine: TriageEngine) -> None:
    texts = [
        "Chào anh",
        "Cảm ơn các anh nhiều",
        "Có đánh nhau ở chợ",
        "Em bị mất ví hôm qua",
        "Cháy rồi",
        "Hi there, thanks for your help",
        "Someone stole my bike",
    ]
    for result in engine.triage_many(texts):
        assert (result.priority == "P4") == (result.category == "greeting")
        assert result.actionable == (result.category != "greeting")


def test_light_injury_that_already_happened_is_not_p1(engine: TriageEngine) -> None:
    text = "Vừa có ô tô quẹt xe máy rồi bỏ chạy, người bị quẹt chỉ trầy nhẹ, đã đứng dậy được"
    assert engine.triage(text).priority == "P2"


def test_negated_weapon_is_not_an_urgency(engine: TriageEngine) -> None:
    result = engine.triage("đang có đánh nhau ở chợ, 2 nhóm tầm 10 đứa, chưa thấy cầm dao")
    assert result.priority != "P1"


def test_received_at_reads_this_morning_as_past(engine: TriageEngine) -> None:
    text = "Sáng nay em bị mất chiếc xe đạp điện để trước cổng trường"
    afternoon = engine.triage(text, received_at=datetime(2024, 1, 24, 16, 0, tzinfo=VN))
    assert afternoon.priority == "P3"
    assert any("received 16:00" in r for r in afternoon.reasons)


def test_triage_many_keeps_order_and_matches_single_calls(engine: TriageEngine) -> None:
    texts = [
        "Cháy nhà ở Kim Long",
        "",
        "Chào anh",
        "cho e hoi lam cccd o dau",
        "👍",
        "Someone stole my phone at Dong Ba market",
    ]
    channels = ["sms", "voice", "zalo", "sms", "zalo", "whatsapp"]
    batch = engine.triage_many(texts, channels)
    singles = [engine.triage(t, c) for t, c in zip(texts, channels, strict=True)]
    assert batch == singles
    assert [r.category for r in batch][:3] == ["fire_rescue", "other", "greeting"]
    assert engine.triage_many([]) == []


def test_mismatched_batch_lengths_are_rejected(engine: TriageEngine) -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        engine.triage_many(["a", "b"], channels=["sms"])


def _check(result: TriageResult) -> None:
    assert result.category in CATEGORIES
    assert result.priority in PRIORITIES
    assert result.location is None or result.location in DISTRICTS
    assert result.language in LANGUAGES
    assert 0.0 <= result.confidence <= 1.0


def test_hostile_input_never_crashes(engine: TriageEngine) -> None:
    rng = random.Random(7)
    alphabet = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạ 0123456789.,!?🙂\u200d\u0301\x00\t\n"
    texts = [
        "x" * 100_000,
        ("cháy nhà ở Kim Long " * 6000),
        "🙂" * 5000,
        "\x00\x01\x02\ufffd\ud7ff",
        "Ａｂｃ　ＣＨÁＹ",  # full-width
        "Привет 你好 مرحبا שלום สวัสดี Xin chào",
        "̣̀́̉̃",  # combining marks only
        "[sticker][image]",
        "\u202eevil bidi\u202c",
        "a" * 3 + "\n" * 500,
        *("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400))) for _ in range(200)),
    ]
    results = engine.triage_many(texts)
    assert len(results) == len(texts)
    for result in results:
        _check(result)
    long_result = engine.triage("x" * 100_000)
    _check(long_result)


def test_surrogates_and_odd_types_do_not_crash(engine: TriageEngine) -> None:
    _check(engine.triage("\udcff broken surrogate"))
    _check(engine.triage("text", channel="carrier-pigeon", kind="unknown-kind"))


@pytest.mark.parametrize(
    ("text", "category", "priority"),
    [
        # TRIAGE.md: a person still missing is P2, whatever else the text says ("hay quên").
        (
            "Ông nội em hay quên, đi tập thể dục từ sáng tới giờ chưa về, cả nhà đang tìm",
            "other",
            "P2",
        ),
        # ... but a lost dog someone found is a P3 "other".
        ("Em nhặt được con chó lạc có vòng cổ ở gần chợ, ai mất liên hệ em", "other", "P3"),
        # A dangerous animal that just hurt people is a hazard now.
        ("Con chó dữ vừa cắn 2 đứa nhỏ ở sân bóng, giờ vẫn chạy ngoài đường", "other", "P2"),
        # A fight announced for tonight with knives is not yet a danger now.
        (
            "Nghe nói tối nay hai nhóm hẹn nhau đánh nhau ở cầu, tụi nó mang theo dao",
            "violence",
            "P2",
        ),
    ],
)
def test_priority_rules_of_the_contract(
    engine: TriageEngine, text: str, category: str, priority: str
) -> None:
    result = engine.triage(text)
    assert (result.category, result.priority) == (category, priority)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # A forest fire burning now is a fire (fire_rescue, P1), not a report about the forest.
        ("Khói rất lớn trên núi sau xóm, hình như cháy rừng, lửa đang lan xuống", "fire_rescue"),
        ("chay rung thong o doi sau truong r, lua boc cao lam", "fire_rescue"),
        # An animal attacking people now is "other" (TRIAGE.md) and a danger to the body now.
        ("Con trâu điên đang húc người ngoài đồng, một ông bị húc văng không dậy được", "other"),
        ("Bầy chó đang cắn xé một đứa nhỏ ngoài ngõ, máu me đầy người", "other"),
    ],
)
def test_fires_in_forests_and_animals_attacking_now_are_p1(
    engine: TriageEngine, text: str, category: str
) -> None:
    result = engine.triage(text)
    assert (result.category, result.priority) == (category, "P1")


def test_smoke_from_burning_straw_is_environment_not_a_fire(engine: TriageEngine) -> None:
    result = engine.triage("Chiều nào hàng xóm cũng đốt rơm rạ, khói bay mù mịt vào nhà")
    assert (result.category, result.priority) == ("environment", "P3")


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        # Without diacritics these words are other words: "tư vấn" (advice), "mấy thằng"
        # (a few guys), "bị cắn" (bitten), and "em sợ quá" is fear now, not a future risk.
        ("toi can tu van ve thu tuc", "self_harm"),
        ("may thang say dang danh nhau", "past"),
        ("con cho vua can nguoi, nguoi bi can da di tiem", "severe_injury"),
        ("nó đang co giật sùi bọt mép, em sợ quá", "risk"),
        ("trạm cứu hộ bãi biển không có người trực", "stranded"),
    ],
)
def test_look_alike_words_raise_no_signal(engine: TriageEngine, text: str, signal: str) -> None:
    assert not engine.analyser.analyse(text).signals.has(signal)


def test_posing_as_an_officer_is_fraud_not_officer_conduct(engine: TriageEngine) -> None:
    text = (
        "Có người gọi xưng là công an phường, bắt mẹ em chuyển tiền để xác minh,"
        " mẹ đang ra ngân hàng"
    )
    result = engine.triage(text)
    assert (result.category, result.priority) == ("fraud", "P2")


@pytest.mark.parametrize(
    "text",
    [
        "There is a fight with knives near Dong Ba market",
        "Có nhóm thanh niên cầm dao đánh nhau gần chợ Đông Ba",
    ],
)
def test_a_fight_with_knives_is_violence_not_public_order(engine: TriageEngine, text: str) -> None:
    # TRIAGE.md: "a fight with knives is violence, not public_order".
    result = engine.triage(text)
    assert (result.category, result.priority, result.location) == ("violence", "P1", "hue_city")


def test_complaint_about_handling_is_officer_conduct(engine: TriageEngine) -> None:
    text = "Em báo vụ trộm xe từ tuần trước mà công an xã tới giờ chưa xuống làm việc"
    assert engine.triage(text).category == "officer_conduct"
