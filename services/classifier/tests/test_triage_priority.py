"""Priority rules of TRIAGE.md (pure unit tests on signals, no model)."""

from __future__ import annotations

import pytest

from hotline_classifier.cues import Cues
from hotline_classifier.priority import decide_priority

CALM_MODEL = {"P1": 0.05, "P2": 0.15, "P3": 0.80}
UNSURE_MODEL = {"P1": 0.36, "P2": 0.40, "P3": 0.24}


def cues(*found: str, negated: tuple[str, ...] = ()) -> Cues:
    return Cues({name: name for name in found}, {name: name for name in negated})


def test_p4_only_and_always_for_greetings() -> None:
    assert decide_priority("greeting", CALM_MODEL, cues("fire", "now"), cues())[0] == "P4"
    for category in ("traffic", "theft", "other", "admin_request"):
        assert decide_priority(category, CALM_MODEL, cues(), cues())[0] != "P4"


@pytest.mark.parametrize(
    ("category", "signals"),
    [
        ("fire_rescue", ("fire",)),
        ("fire_rescue", ("drowning",)),
        ("fire_rescue", ("trapped", "now")),
        ("violence", ("weapon", "now")),
        ("violence", ("kidnap",)),
        ("traffic", ("unconscious",)),
        ("traffic", ("blood", "just")),
        ("drugs", ("unconscious",)),
        ("public_order", ("weapon",)),
    ],
)
def test_danger_now_is_p1_whatever_the_model_says(category: str, signals: tuple[str, ...]) -> None:
    priority, reasons = decide_priority(category, CALM_MODEL, cues(*signals), cues())
    assert priority == "P1"
    assert reasons[0].startswith("urgency:")


@pytest.mark.parametrize(
    "extra",
    ["past", "recurring", "safe", "light_injury", "risk", "future"],
)
def test_danger_that_is_over_planned_or_only_a_risk_is_left_to_the_model(extra: str) -> None:
    priority, _ = decide_priority("violence", CALM_MODEL, cues("weapon", extra), cues())
    assert priority == "P3"


def test_negated_danger_is_not_p1() -> None:
    priority, _ = decide_priority("public_order", CALM_MODEL, cues(negated=("weapon",)), cues())
    assert priority == "P3"


def test_a_crash_told_with_dam_is_not_p1_by_itself() -> None:
    # "xe tải đâm vào xe máy" is a crash; only injuries make it P1.
    assert decide_priority("traffic", CALM_MODEL, cues("stab_or_crash"), cues())[0] == "P3"
    assert decide_priority("violence", CALM_MODEL, cues("stab_or_crash"), cues())[0] == "P1"


def test_a_time_said_far_from_the_danger_does_not_date_it() -> None:
    # "Cảm ơn anh hôm trước đã trả lời. … Cháy nhà ở chợ!" — the thanks is past, the fire is now.
    far = Cues({"past": "hôm trước", "fire": "cháy"}, {}, {"past": (0,), "fire": (4,)})
    near = Cues({"past": "tối qua", "fire": "cháy"}, {}, {"past": (1,), "fire": (2,)})
    assert decide_priority("fire_rescue", CALM_MODEL, far, cues())[0] == "P1"
    assert decide_priority("fire_rescue", CALM_MODEL, near, cues())[0] == "P3"


def test_person_still_missing_is_at_least_p2() -> None:
    assert decide_priority("other", CALM_MODEL, cues("missing"), cues())[0] == "P2"
    # ... but not a lost dog, a lost wallet, or someone already safe.
    assert decide_priority("other", CALM_MODEL, cues("missing"), cues("animal"))[0] == "P3"
    assert decide_priority("other", CALM_MODEL, cues("missing"), cues("lost_item"))[0] == "P3"
    assert decide_priority("other", CALM_MODEL, cues("missing", "safe"), cues())[0] == "P3"


def test_animal_that_just_hurt_people_is_p2() -> None:
    assert decide_priority("other", CALM_MODEL, cues("harm"), cues("animal"))[0] == "P2"
    assert decide_priority("other", CALM_MODEL, cues("harm", "past"), cues("animal"))[0] == "P3"


def test_animal_attacking_people_now_is_p1() -> None:
    # "Trâu điên đang húc người": a danger to the body now (TRIAGE.md), not only a hazard.
    attack = cues("animal_attack", "harm", "now")
    assert decide_priority("other", CALM_MODEL, attack, cues("animal"))[0] == "P1"
    # ... unless it is over, or only light injuries are told ("vừa có người bị thương nhẹ").
    past = cues("animal_attack", "harm", "past")
    assert decide_priority("other", CALM_MODEL, past, cues("animal"))[0] == "P3"
    minor = cues("animal_attack", "harm", "minor_injury")
    assert decide_priority("other", CALM_MODEL, minor, cues("animal"))[0] == "P2"


@pytest.mark.parametrize(
    ("category", "danger"),
    [
        ("other", "unconscious"),
        ("fire_rescue", "fire"),
        ("fire_rescue", "drowning"),
        ("traffic", "heavy_bleeding"),
    ],
)
def test_a_light_injury_does_not_rule_out_another_danger(category: str, danger: str) -> None:
    # "mấy cháu bị đốt sưng mặt, có cháu ngất xỉu rồi": the swelling is light, the faint is not.
    priority, _ = decide_priority(category, CALM_MODEL, cues(danger, "minor_injury"), cues())
    assert priority == "P1"


@pytest.mark.parametrize("danger", ["blood", "weapon", "attack", "stab_or_crash"])
def test_a_light_injury_rules_out_the_danger_it_describes(danger: str) -> None:
    priority, _ = decide_priority("violence", CALM_MODEL, cues(danger, "minor_injury"), cues())
    assert priority == "P3"


def test_heavy_bleeding_and_self_harm_are_p1_where_a_little_blood_is_not() -> None:
    assert decide_priority("other", CALM_MODEL, cues("blood"), cues("animal"))[0] == "P3"
    assert decide_priority("other", CALM_MODEL, cues("heavy_bleeding"), cues())[0] == "P1"
    assert decide_priority("other", CALM_MODEL, cues("self_harm"), cues())[0] == "P1"
    assert decide_priority("drugs", CALM_MODEL, cues("self_harm"), cues())[0] == "P1"
    # A crash is told with "húc" too: in traffic only the injuries make it P1.
    assert decide_priority("traffic", CALM_MODEL, cues("animal_attack"), cues())[0] == "P3"


def test_model_p1_wins_when_likely_enough() -> None:
    assert decide_priority("theft", UNSURE_MODEL, cues(), cues())[0] == "P1"
    assert decide_priority("theft", {"P1": 0.1, "P2": 0.5, "P3": 0.4}, cues(), cues())[0] == "P2"


def test_reasons_quote_time_signals() -> None:
    _, reasons = decide_priority("theft", CALM_MODEL, cues("past"), cues())
    assert reasons == ["time: 'past' → past"]


def test_a_read_quantity_is_quoted_as_read() -> None:
    signals = Cues(
        {"past": "cách đây 3 tiếng"},
        {},
        {"past": (0,)},
        {"past": "time: 'cách đây 3 tiếng' → 3 h ago: past"},
    )
    priority, reasons = decide_priority("theft", CALM_MODEL, signals, cues())
    assert (priority, reasons) == ("P3", ["time: 'cách đây 3 tiếng' → 3 h ago: past"])
