"""`hotline simulate` pieces that need no pipeline: options, recipient matching, progress, the
day's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline.contracts.events import CaseEvent, DeliveryOutcome, DispatchDecision, example
from hotline.privacy import mask_address
from hotline_cli import simulate
from hotline_cli.main import main
from hotline_cli.settings import CliSettings
from hotline_cli.simulate import load_scenario, with_fresh_citizens


def outcome(channel: str, address: str, **changes: Any) -> DeliveryOutcome:
    fields: dict[str, Any] = {
        "delivery_id": "d" * 32,
        "case_id": "HUE-20240124-0042",
        "purpose": "escalation",
        "recipient_id": "director",
        "recipient_role": "director",
        "channel": channel,
        "address_masked": mask_address(address),
        "status": "sent",
        "attempts": 1,
        "at": datetime(2024, 1, 24, 2, 0, tzinfo=UTC),
        "level": 3,
    }
    fields.update(changes)
    return DeliveryOutcome.model_validate(fields)


# --------------------------------------------------------------------------- recipients


def test_a_message_to_a_colleague_on_the_same_channel_is_not_the_recipients() -> None:
    director = outcome("sms", "+84919697575")
    commander = {"channel": "sms", "to": "+84905111000", "text": "… /ack/x"}
    assert not simulate._same_recipient(commander, director)
    assert simulate._same_recipient({"channel": "sms", "to": "+84919697575"}, director)


def test_the_same_address_on_another_channel_is_not_a_match() -> None:
    director = outcome("sms", "+84919697575")
    assert not simulate._same_recipient({"channel": "zalo", "to": "84919697575"}, director)


@pytest.mark.parametrize(
    ("roster", "channel", "recorded"),
    [
        ("+84919697575", "sms", "+84919697575"),  # Twilio records E.164
        ("0919697575", "sms", "+84919697575"),  # roster in national form
        ("0919.69.75.75", "sms", "+84919697575"),
        ("+84919697575", "whatsapp", "84919697575"),  # WhatsApp: digits without +
        ("+84919697575", "zalo", "84919697575"),  # ZNS to a phone
        ("7707127891907919", "zalo", "7707127891907919"),  # a Zalo user id
        ("501000001", "telegram", "501000001"),
        ("pv01-leader@example.vn", "email", "pv01-leader@example.vn"),
    ],
)
def test_the_recipient_matches_however_the_provider_spells_the_address(
    roster: str, channel: str, recorded: str
) -> None:
    delivery = outcome(channel, roster)
    assert simulate._same_recipient({"channel": channel, "to": recorded}, delivery)


def test_one_digit_apart_is_somebody_else() -> None:
    delivery = outcome("sms", "+84900100001")
    assert not simulate._same_recipient({"channel": "sms", "to": "+84900100002"}, delivery)


# --------------------------------------------------------------------------- options


def test_rate_and_duration_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate.options_error("flood", 20, 60) is None
    assert simulate.options_error("flood", None, None) is None
    assert simulate.options_error("day", 2, None) is None
    assert simulate.options_error("day", None, 600) is None
    assert "--rate must be" in (simulate.options_error("flood", 0, 60) or "")
    assert "--duration must be" in (simulate.options_error("day", None, -1) or "")
    # A script's messages are written: a rate and a duration would ask for another number.
    assert "not both" in (simulate.options_error("day", 2, 600) or "")
    assert main(["simulate", "--scenario", "day", "--rate", "2", "--duration", "60"]) == 2
    err = capsys.readouterr().err
    assert "'day' is a script with its own messages" in err and "--rate" in err


def test_a_refused_option_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object, **__: object) -> None:
        raise AssertionError("nothing may be played")

    monkeypatch.setattr(simulate, "simulate", fail)
    assert simulate.run(CliSettings(), "day", rate=50.0, duration=10.0) == 2
    assert simulate.run(CliSettings(), "flood", rate=0.0) == 2


def test_a_script_without_rate_or_duration_plays_as_written_with_new_citizens() -> None:
    day = load_scenario("day")
    assert simulate.paced(day, salt=7) == with_fresh_citizens(day, 7)


def test_a_script_at_a_rate_arrives_at_that_rate_in_its_own_order() -> None:
    day = load_scenario("day")
    fast = simulate.paced(day, rate=2.0, salt=7)
    messages = [s for s in fast.steps if s.act is None]
    assert len(messages) == 35
    assert [s.id for s in fast.steps] == [s.id for s in day.steps]
    assert [(s.act, s.case_of, s.level) for s in fast.steps] == [
        (s.act, s.case_of, s.level) for s in day.steps
    ]
    # Written: 35 messages over 60 s (the directive last). At 2/s the script lasts 17.5 s,
    # every step at 17.5/60 of its written time, acts included.
    assert fast.steps[-1].at == pytest.approx(17.5)
    for before, after in zip(day.steps, fast.steps, strict=True):
        assert after.at == pytest.approx(before.at * 17.5 / 60.0)
    assert "played at 2 messages/s" in fast.description
    # This run's citizens, as without a rate.
    assert [s.sender for s in fast.steps] == [s.sender for s in with_fresh_citizens(day, 7).steps]


def test_a_script_fitted_into_a_duration_keeps_its_proportions() -> None:
    day = load_scenario("day")
    slow = simulate.paced(day, duration=600.0, salt=7)
    assert slow.steps[-1].at == pytest.approx(600.0)
    assert [s.at for s in slow.steps] == pytest.approx([s.at * 10 for s in day.steps])
    assert "played over 600 s" in slow.description


# --------------------------------------------------------------------------- progress


def test_the_progress_line_counts_every_stage() -> None:
    observer = simulate.Observer(CliSettings(), simulate.View(quiet=True))
    player = simulate.Player(CliSettings(), observer.view, observer)
    player.sent, player.accepted = 12, 11
    observer.triaged = {"a": None, "b": None}  # type: ignore[dict-item]
    observer.decisions = [None]  # type: ignore[list-item]
    observer.deliveries = [
        outcome("sms", "+84919697575"),
        outcome("sms", "+84919697575", purpose="citizen_receipt"),
        outcome("sms", "+84919697575", purpose="citizen_receipt"),
        outcome("sms", "+84919697575", status="failed"),
    ]
    observer.case_events = [
        acked("HUE-1", 5.0, n=1),
        acked("HUE-2", 7.0, n=2),
        CaseEvent.model_validate(example("CaseEvent") | {"type": "escalated"}),
    ]
    line = simulate.progress_line(4.0, observer, player)
    assert line == (
        "[   4.0s] sent 12, accepted 11, triaged 2, decided 1, alerts 1, replies 2, "
        "acknowledged 2, escalated 1"
    )


async def test_quiet_mode_prints_counters_every_interval(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quiet run (a flood) shows a line of counters while it plays, not silence."""

    async def no_op(self: Any) -> None:
        return None

    async def idle(self: Any) -> None:
        import asyncio

        await asyncio.Event().wait()

    async def accept(self: Any, step: simulate.Step) -> None:
        self.sent += 1
        self.accepted += 1

    monkeypatch.setattr(simulate.Observer, "start", no_op)
    monkeypatch.setattr(simulate.Observer, "stop", no_op)
    monkeypatch.setattr(simulate.Observer, "run", idle)
    monkeypatch.setattr(simulate.Player, "send", accept)
    steps = [simulate.Step(at=i * 0.05, id=f"f{i}", channel="sms", text="x") for i in range(10)]
    scenario = simulate.Scenario("flood", "test", steps)
    result = await simulate.simulate(
        CliSettings(), scenario, quiet=True, settle_s=0.6, progress_every_s=0.2
    )
    assert result.sent == 10
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "sent " in ln]
    assert len(lines) >= 3, lines
    assert lines[-1].endswith(
        "sent 10, accepted 10, triaged 0, decided 0, alerts 0, replies 0, "
        "acknowledged 0, escalated 0"
    )


def test_each_run_gives_the_scenario_new_citizens_who_stay_themselves_within_it() -> None:
    day = load_scenario("day")
    fresh = with_fresh_citizens(day, 7)
    before = {s.id: s.sender for s in day.steps if s.act is None}
    after = {s.id: s.sender for s in fresh.steps if s.act is None}
    assert after["g02"]["phone"] == "0905123408"  # ...401 shifted by 7
    assert after["r_knife"]["user_id"] == "8800112233440009"
    assert after["r_knife"]["name"] == before["r_knife"]["name"]
    # Every citizen is new, and one person stays one person (the knife-fight reporter thanks
    # the police later from the same Zalo account).
    assert all(after[k] != before[k] for k in after if before[k])
    assert after["g17"]["user_id"] == after["r_knife"]["user_id"]
    assert len({str(v) for v in after.values()}) == len({str(v) for v in before.values()})
    # The people acting (acks, directives) are not scenario senders: unchanged.
    assert [s for s in fresh.steps if s.act] == [s for s in day.steps if s.act]


# --------------------------------------------------------------------------- the day's figures

T0 = datetime(2024, 1, 24, 8, 0, tzinfo=UTC)


def decision(n: int, action: str, channel: str, **changes: Any) -> DispatchDecision:
    """Decision `n` about a report received at T0 + n minutes."""
    fields: dict[str, Any] = {
        "decision_id": f"dec-e{n}",
        "event_id": f"e{n}",
        "action": action,
        "category": "greeting",
        "priority": "P4",
        "reporter": {"channel": channel, "phone": "+84905123401", "display_name": "Lê Văn Hải"},
        "received_at": T0 + timedelta(minutes=n),
        "decided_at": T0 + timedelta(minutes=n, seconds=1),
    }
    fields.update(changes)
    return DispatchDecision.model_validate(fields)


def report(
    n: int,
    action: str,
    channel: str,
    category: str,
    priority: str,
    where: str | None,
    unit: str | None,
    case: str,
    locality: str | None = None,
) -> DispatchDecision:
    return decision(
        n,
        action,
        channel,
        category=category,
        priority=priority,
        location=where,
        locality=locality,
        responsible_unit=unit,
        case_id=case,
    )


def acked(case: str, after_s: float, *, n: int, priority: str | None = None) -> CaseEvent:
    """The case opened by report `n` acknowledged `after_s` seconds after that report."""
    return CaseEvent.model_validate(
        {
            "event_id": f"ack-{case}-{after_s}",
            "case_id": case,
            "type": "acknowledged",
            "source": "notifier",
            "actor": {"id": "hue-city-o1", "role": "officer", "name": "Nguyễn Văn A"},
            "at": T0 + timedelta(minutes=n, seconds=after_s),
            "priority": priority,
        }
    )


def the_day() -> tuple[list[DispatchDecision], list[CaseEvent]]:
    decisions = [
        decision(0, "greeting", "zalo"),
        decision(1, "greeting", "sms"),
        decision(2, "greeting", "zalo"),
        report(3, "new_case", "zalo", "violence", "P1", "hue_city", "ca-tp-hue", "C1", "Đông Ba"),
        report(4, "new_case", "sms", "fire_rescue", "P1", "phu_vang", "pc07", "C2", "Phú Đa"),
        report(5, "merged", "viber", "fire_rescue", "P1", "phu_vang", "pc07", "C2", "chợ Phú Đa"),
        report(6, "new_case", "zalo", "theft", "P2", "hue_city", "ca-tp-hue", "C3"),
        report(7, "new_case", "whatsapp", "fraud", "P2", None, "pc02", "C4"),
        report(8, "new_case", "sms", "theft", "P2", "huong_thuy", "ca-huong-thuy", "C5"),
        report(9, "new_case", "viber", "admin_request", "P3", "phong_dien", None, "C6"),
        report(10, "followup", "zalo", "theft", "P2", "hue_city", "ca-tp-hue", "C3"),
        report(11, "callback", "voice", "other", "P3", None, "pv01", "C7"),
        decision(12, "acknowledgement", "zalo", case_id="C3"),
    ]
    decisions.append(decisions[4])  # a redelivered decision counts once
    events = [
        acked("C1", 90, n=3),
        acked("C2", 30, n=4),
        acked("C2", 10, n=4),  # the earliest acknowledgement of a case is its time
        acked("C3", 20, n=6),
        acked("C4", 60, n=7),
        acked("C5", 200, n=8),
        acked("C7", 5, n=11),  # a callback task: left out
        acked("OLD-1", 5, n=0),  # a case opened before the run: left out
    ]
    return decisions, events


def test_the_days_figures_count_rank_and_take_medians() -> None:
    decisions, events = the_day()
    figures = simulate.day_figures(decisions, events)
    # Citizens' messages per channel (the officer's OK apart), largest first, then by name.
    assert figures.messages_by_channel == [
        ("zalo", 5),
        ("sms", 3),
        ("viber", 2),
        ("voice", 1),
        ("whatsapp", 1),
    ]
    assert figures.officer_replies == 1
    # Reports: new cases, merged reports and follow-ups (8), not the callback task.
    assert figures.reports_by_category == [
        ("theft", 3),
        ("fire_rescue", 2),
        ("admin_request", 1),
        ("fraud", 1),
        ("violence", 1),
    ]
    assert figures.reports_by_district == [
        ("hue_city", 3),
        ("phu_vang", 2),
        ("huong_thuy", 1),
        ("phong_dien", 1),
        ("unknown", 1),
    ]
    # Names of one place count together, under the shortest: "chợ Phú Đa" is in Phú Đa.
    assert figures.reports_by_place == [("Phú Đa", 2), ("Đông Ba", 1)]
    assert figures.reports_by_unit == [
        ("ca-tp-hue", 3),
        ("pc07", 2),
        ("ca-huong-thuy", 1),
        ("none", 1),
        ("pc02", 1),
    ]
    # P1: 90 s and 10 s → 50 s; P2: 20, 60, 200 s → 60 s; P3: nothing acknowledged, not shown.
    assert figures.time_to_acknowledge == [
        simulate.AckFigures("P1", cases=2, acknowledged=2, median_s=50.0),
        simulate.AckFigures("P2", cases=3, acknowledged=3, median_s=60.0),
    ]


def test_a_case_counts_under_the_priority_its_acknowledgement_carries() -> None:
    decisions = [
        report(0, "new_case", "sms", "theft", "P3", "hue_city", "ca-tp-hue", "C1"),
        report(1, "new_case", "sms", "theft", "P3", "hue_city", "ca-tp-hue", "C2"),
    ]
    events = [acked("C1", 30, n=0, priority="P2")]  # raised by a merged report
    figures = simulate.day_figures(decisions, events)
    assert figures.time_to_acknowledge == [
        simulate.AckFigures("P2", cases=1, acknowledged=1, median_s=30.0)
    ]


def test_the_summary_prints_the_breakdowns_without_personal_data() -> None:
    decisions, events = the_day()
    result = simulate.SimulationResult(
        sent=13,
        accepted=13,
        rejected={},
        triaged=13,
        decisions={"greeting": 3, "new_case": 6, "merged": 1, "followup": 1, "callback": 1},
        cases=7,
        alerts_sent=9,
        citizen_replies=8,
        escalations=1,
        acknowledged=7,
        figures=simulate.day_figures(decisions, events),
    )
    text = simulate.render_summary(result)
    assert text.splitlines()[2:] == [
        "  messages and calls received  13 (of 13 sent, including 1 officer's OK reply)",
        "    by channel                 zalo 5, sms 3, viber 2, voice 1, whatsapp 1",
        "  reports                      8 (6 new cases, 1 merged into another citizen's case, "
        "1 follow-ups)",
        "    by category                theft 3, fire_rescue 2, admin_request 1, fraud 1, "
        "violence 1",
        "    by district                hue_city 3, phu_vang 2, huong_thuy 1, phong_dien 1, "
        "unknown 1",
        "    most reported places       Phú Đa 2, Đông Ba 1",
        "    by responsible unit        ca-tp-hue 3, pc07 2, ca-huong-thuy 1, none 1, pc02 1",
        "  greetings                    3",
        "  missed calls to return       1",
        "  alerts sent to officers      9",
        "  escalations                  1",
        "  acknowledgements             7",
        "    median time to acknowledge P1 50 s (2 of 2), P2 60 s (3 of 3)",
        "  replies to citizens          8",
    ]
    # The records carry the reporters' and officers' names and numbers: none is printed.
    for personal in ("0905123401", "+84905123401", "Lê Văn Hải", "Nguyễn Văn A", "hue-city-o1"):
        assert personal not in text


def test_a_run_with_nothing_decided_prints_no_empty_breakdowns() -> None:
    result = simulate.SimulationResult(
        sent=1,
        accepted=0,
        rejected={0: 1},
        triaged=0,
        decisions={},
        cases=0,
        alerts_sent=0,
        citizen_replies=0,
        escalations=0,
        acknowledged=0,
    )
    text = simulate.render_summary(result)
    assert "    by " not in text and "median time" not in text
    assert "  messages and calls received  0 (of 1 sent)" in text.splitlines()


def test_times_to_acknowledge_read_in_seconds_minutes_or_hours() -> None:
    assert [simulate._duration(s) for s in (0.4, 119, 120, 3 * 60 + 30, 7200, 9000)] == [
        "0 s",
        "119 s",
        "2.0 min",
        "3.5 min",
        "2.0 h",
        "2.5 h",
    ]


def test_a_long_breakdown_wraps_between_items_under_its_figures() -> None:
    lines = simulate._breakdown("by district", [f"district_{i} {i}" for i in range(12)])
    assert len(lines) == 3 and all(len(ln) <= simulate.SUMMARY_WIDTH for ln in lines)
    assert lines[0].startswith("    by district                district_0 0,")
    assert all(ln.startswith(" " * 31) and ln[31] != " " for ln in lines[1:])
    assert lines[-1].endswith("district_11 11")
    assert simulate._breakdown("by unit", []) == []


def test_the_flood_has_its_officers_acknowledge_most_reports_once_per_case() -> None:
    steps = simulate.flood_steps(10, 60)
    reports = {
        s.id: s
        for s in steps
        if s.act is None and "cảm ơn" not in s.text and "an toàn" not in s.text
    }
    acks = [s for s in steps if s.act == "ack_first"]
    assert [s.at for s in steps] == sorted(s.at for s in steps)  # the player plays in order
    assert len([s for s in steps if s.act is None]) == 600
    # Only reports are acknowledged (a greeting opens no case), each at most once, later.
    assert {a.case_of for a in acks} <= set(reports)
    assert len({a.case_of for a in acks}) == len(acks)
    low, high = simulate.FLOOD_ACK_DELAY_S
    for a in acks:
        assert low <= a.at - reports[a.case_of or ""].at <= high
    assert 0.7 < len(acks) / len(reports) < 0.9  # FLOOD_ACK_SHARE = 0.8
    assert simulate.flood_steps(10, 60) == steps  # seeded: the same surge every run
    quiet = simulate.flood_steps(10, 6, ack_share=0.0)
    assert not [s for s in quiet if s.act]


async def test_ack_first_opens_one_link_per_case_however_many_reports_name_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    observer = simulate.Observer(CliSettings(), simulate.View(quiet=True))
    observer.case_of_step.update({"f0001": "HUE-1", "f0002": "HUE-1", "f0003": "HUE-2"})
    observer.opened.update({"HUE-1", "HUE-2"})
    player = simulate.Player(CliSettings(), observer.view, observer)
    opened: list[str] = []

    async def open_link(step: simulate.Step, case_id: str) -> None:
        opened.append(case_id)

    monkeypatch.setattr(player, "_ack_link", open_link)
    for report in ("f0001", "f0002", "f0003", "f0001"):
        await player.act(simulate.Step(at=0, act="ack_first", case_of=report))
    await player.close()
    assert opened == ["HUE-1", "HUE-2"]
    assert player.acknowledged == {"HUE-1", "HUE-2"}


async def test_an_ack_on_a_case_alerted_before_the_run_is_skipped_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Playing the day again within the merge window: its fire report joins the case the
    first run opened, whose alert this run never saw. The officer's act says so instead of
    waiting 90 s for an alert and calling it missing; a case this run opened is acted on."""
    view = simulate.View(quiet=False, colour=False)
    observer = simulate.Observer(CliSettings(), view)
    observer.step_of_event.update({"e1": "r_fire1", "e2": "r_fire2", "e3": "r_scam"})
    observer._on_decision(decision(1, "merged", "sms", category="fire_rescue", case_id="HUE-OLD"))
    observer._on_decision(decision(2, "merged", "viber", category="fire_rescue", case_id="HUE-OLD"))
    observer._on_decision(decision(3, "new_case", "whatsapp", category="fraud", case_id="HUE-NEW"))
    out = capsys.readouterr().out
    assert "joins HUE-OLD (merged, no new alert, a case opened before this run)" in out
    assert observer.opened == {"HUE-NEW"}
    player = simulate.Player(CliSettings(), view, observer)
    opened: list[str] = []

    async def open_link(step: simulate.Step, case_id: str) -> None:
        opened.append(case_id)

    monkeypatch.setattr(player, "_ack_link", open_link)
    await player.act(simulate.Step(at=0, act="ack", case_of="r_fire1"))
    await player.act(simulate.Step(at=0, act="ack_reply", case_of="r_fire2"))
    await player.act(simulate.Step(at=0, act="ack", case_of="r_scam"))
    await player.close()
    assert opened == ["HUE-NEW"]
    out = capsys.readouterr().out
    assert "r_fire1    skipped   ack: HUE-OLD was alerted before this run" in out
    assert "r_fire2    skipped   ack_reply: HUE-OLD was alerted before this run" in out
    assert player.sent == 0  # no "OK" reply sent for it
