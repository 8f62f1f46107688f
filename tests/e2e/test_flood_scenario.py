"""The flood scenario (`make run SCENARIO=flood`) through a whole pipeline: a short surge in
which duty officers acknowledge most cases through their alerts' links, once per case however
many citizens report it, with the flood's own escalation timeouts (as `make run` starts it).
"""

from __future__ import annotations

import pytest

from hotline.contracts import CaseEvent
from hotline_cli.pipeline import Pipeline
from hotline_cli.simulate import FLOOD_ESCALATION_TIMEOUTS_S, Scenario, flood_steps, play

from .test_day_scenario import cli_settings

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

ESCALATION_TIMEOUTS_S = dict(FLOOD_ESCALATION_TIMEOUTS_S)


def acknowledgements(case_events: list[CaseEvent], case_id: str) -> list[CaseEvent]:
    return [e for e in case_events if e.case_id == case_id and e.type.value == "acknowledged"]


async def test_a_short_flood_is_acknowledged_once_per_case_by_the_officers_alerted(
    pipeline: Pipeline,
) -> None:
    # 40 messages in 8 s; each acknowledgement 1-3 s after its report (the demo waits 8-25 s).
    steps = flood_steps(5, 8, ack_delay_s=(1.0, 3.0))
    played = await play(
        cli_settings(pipeline), Scenario("flood", "test", steps), quiet=True, settle_s=30.0
    )
    result, seen, player = played.result, played.observer, played.player
    assert result.accepted == result.sent == 40 and result.rejected == {}, result

    acts = [s for s in steps if s.act == "ack_first"]
    acked = {seen.case_of_step[a.case_of or ""] for a in acts}
    assert acked and acked == player.acknowledged
    # Several citizens reported the same incident: their acts named one case, answered once.
    assert len(acked) < len(acts), "this surge merged no acknowledged report"
    opened = {d.case_id for d in seen.decisions if d.action.value == "new_case"}
    for case in opened:
        acks = acknowledgements(seen.case_events, case)
        if case not in acked:
            assert not acks, case  # nobody else answers in the scenario
            continue
        assert len({(e.actor.id, e.actor.role) for e in acks}) == 1, acks
        alerted = {
            (d.recipient_role, d.purpose.value)
            for d in seen.alerts[(case, 0)]
            if d.status.value == "sent" and d.purpose.value == "alert"
        }
        assert {(acks[0].actor.role, "alert")} == alerted, (acks, alerted)
        # Answered seconds after the alert: well inside the flood's P1 timeout, no escalation.
        assert not [
            e for e in seen.case_events if e.case_id == case and e.type.value == "escalated"
        ]
