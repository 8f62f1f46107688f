"""Who is on call at a moment, who gets the case, and the escalation chain (no I/O)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hotline.clock import ManualClock
from hotline.contracts.events import Role
from hotline.contracts.labels import Priority
from hotline_dispatcher.assignment import (
    choose,
    escalation_chain,
    informed_recipients,
    on_call,
)
from hotline_dispatcher.config import Organisation, load_organisation
from hotline_dispatcher.testing import local

# Rotation anchor 2024-01-01; 2024-01-24 is day 23 of the 4-day cycle = day 3:
#   day 3: day shift [o2, o3], night [o4]; day 0 (the 25th... see below) etc.


@pytest.fixture(scope="module")
def org() -> Organisation:
    return load_organisation()


def ids(people: list[object]) -> list[str]:
    return [p.id for p in people]  # type: ignore[attr-defined]


def test_day_shift_by_rotation(org: Organisation) -> None:
    clock = ManualClock(local(2024, 1, 24, 8, 42))
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, clock.now())) == [
        "hue-city-o2",
        "hue-city-o3",
    ]
    clock.set(local(2024, 1, 25, 7, 0))  # the 25th is day 0 of the cycle: [o1, o2]
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, clock.now())) == [
        "hue-city-o1",
        "hue-city-o2",
    ]


def test_night_shift_crossing_midnight_belongs_to_the_day_it_started(org: Organisation) -> None:
    clock = ManualClock(local(2024, 1, 24, 18, 59))
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, clock.now())) == [
        "hue-city-o2",
        "hue-city-o3",
    ]
    clock.advance(timedelta(minutes=1))  # 19:00 on the 24th: the night shift of the 24th
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, clock.now())) == ["hue-city-o4"]
    clock.set(local(2024, 1, 25, 2, 30))  # after midnight: still the 24th's night shift
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, clock.now())) == ["hue-city-o4"]
    clock.set(local(2024, 1, 25, 6, 59))
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, clock.now())) == ["hue-city-o4"]
    clock.set(local(2024, 1, 25, 19, 0))  # the 25th's night (cycle day 0) is o3's
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, clock.now())) == ["hue-city-o3"]


def test_staff_office_call_takers_and_duty_leader(org: Organisation) -> None:
    # 22:00-06:00 call-taker shift crosses midnight; 2024-01-24 is day 23 % 5 = 3.
    at = local(2024, 1, 25, 1, 0)  # night shift that started on the 24th
    assert ids(on_call(org, "pv01", Role.CALL_TAKER, at)) == ["pv01-ct1"]
    # 24-hour duty leader shift from 07:00: at 06:00 on the 25th it is still the 24th's leader.
    leader_24 = ids(on_call(org, "pv01", Role.STAFF_LEADER, local(2024, 1, 24, 12)))
    assert ids(on_call(org, "pv01", Role.STAFF_LEADER, local(2024, 1, 25, 6))) == leader_24
    assert ids(on_call(org, "pv01", Role.STAFF_LEADER, local(2024, 1, 25, 7))) != leader_24


def test_an_override_swaps_one_officer_for_the_window_only(org: Organisation) -> None:
    # New Year's Eve 2024 (Giao thừa): hue-city-o1 takes hue-city-o4's night shift.
    before = local(2024, 2, 9, 18, 0)
    during = local(2024, 2, 9, 23, 30)
    after_midnight = local(2024, 2, 10, 3, 0)
    assert "hue-city-o4" not in ids(on_call(org, "ca-tp-hue", Role.OFFICER, before))
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, during)) == ["hue-city-o1"]
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, after_midnight)) == ["hue-city-o1"]
    # Without the override the same night is o4's (same cycle day a week earlier).
    assert ids(on_call(org, "ca-tp-hue", Role.OFFICER, during - timedelta(days=4))) == [
        "hue-city-o4"
    ]


def test_a_reinforcement_override_adds_an_officer(org: Organisation) -> None:
    during_tet = local(2024, 2, 11, 10, 0)
    people = ids(on_call(org, "ca-tp-hue", Role.OFFICER, during_tet))
    assert people[-1] == "hue-city-cmd" and len(people) == 3
    assert "hue-city-cmd" not in ids(on_call(org, "ca-tp-hue", Role.OFFICER, local(2024, 2, 15)))


def test_the_officer_with_the_fewest_open_cases_gets_the_case(org: Organisation) -> None:
    candidates = on_call(org, "ca-tp-hue", Role.OFFICER, local(2024, 1, 24, 9))
    assert choose(candidates, {}) is candidates[0]  # tie: roster order
    assert choose(candidates, {"hue-city-o2": 3, "hue-city-o3": 1}) is candidates[1]
    assert choose(candidates, {"hue-city-o2": 1, "hue-city-o3": 1}) is candidates[0]
    assert choose([], {}) is None


def test_escalation_chain_officer_commander_duty_leader_director(org: Organisation) -> None:
    at = local(2024, 1, 24, 9)
    officer = org.people["hue-city-o2"]
    chain = escalation_chain(org, "ca-tp-hue", officer, Priority.P1, at)
    assert [lvl.role for lvl in chain] == [
        Role.OFFICER,
        Role.COMMANDER,
        Role.STAFF_LEADER,
        Role.DIRECTOR,
    ]
    assert [lvl.recipients[0].person_id for lvl in chain][:2] == ["hue-city-o2", "hue-city-cmd"]
    assert chain[-1].recipients[0].contacts[0].address == "+84919697575"
    assert {lvl.timeout_s for lvl in chain} == {120}
    assert all(r.may_see_reporter for lvl in chain for r in lvl.recipients)
    assert [lvl.level for lvl in chain] == [0, 1, 2, 3]
    assert escalation_chain(org, "ca-tp-hue", officer, Priority.P2, at)[0].timeout_s == 600
    assert escalation_chain(org, "ca-tp-hue", officer, Priority.P3, at)[0].timeout_s == 3600


def test_nobody_appears_twice_on_a_chain(org: Organisation) -> None:
    at = local(2024, 1, 24, 9)
    leader = on_call(org, "pv01", Role.STAFF_LEADER, at)[0]
    chain = escalation_chain(org, "pv01", leader, Priority.P2, at)
    people = [lvl.recipients[0].person_id for lvl in chain]
    assert len(people) == len(set(people)) == 3  # leader, pv01 commander, director


def test_informed_units_see_the_report_but_not_the_reporter(org: Organisation) -> None:
    recipients = informed_recipients(org, ["bgd", "pc02"], local(2024, 1, 24, 9))
    assert [(r.unit_id, r.may_see_reporter) for r in recipients] == [
        ("bgd", True),
        ("pc02", False),
    ]
    assert recipients[0].person_id == "director"
