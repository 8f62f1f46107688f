"""`hotline simulate` pieces that need no pipeline: options, recipient matching, progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hotline.contracts.events import DeliveryOutcome
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


def test_rate_or_duration_with_a_scripted_scenario_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", "--scenario", "day", "--rate", "20"]) == 2
    err = capsys.readouterr().err
    assert "--rate only apply to the flood scenario" in err and "'day'" in err
    assert main(["simulate", "--scenario", "day", "--duration", "30"]) == 2
    assert "--duration only apply" in capsys.readouterr().err


def test_flood_options_are_checked() -> None:
    assert simulate.options_error("flood", 20, 60) is None
    assert simulate.options_error("flood", None, None) is None
    assert simulate.options_error("day", None, None) is None
    assert "--rate must be" in (simulate.options_error("flood", 0, 60) or "")
    assert "--duration must be" in (simulate.options_error("flood", 5, -1) or "")


def test_a_refused_combination_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object, **__: object) -> None:
        raise AssertionError("nothing may be played")

    monkeypatch.setattr(simulate, "simulate", fail)
    assert simulate.run(CliSettings(), "day", rate=50.0, duration=10.0) == 2


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
    line = simulate.progress_line(4.0, observer, player)
    assert line == ("[   4.0s] sent 12, accepted 11, triaged 2, decided 1, alerts 1, replies 2")


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
    assert lines[-1].endswith("sent 10, accepted 10, triaged 0, decided 0, alerts 0, replies 0")


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
