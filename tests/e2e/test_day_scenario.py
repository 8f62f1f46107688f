"""The day scenario (`make run`'s default, `hotline simulate --scenario day`) through a whole
pipeline, with the scenario's own short escalation timeouts, keeping what it promises:

* all 35 messages and calls accepted (plus the officer's "OK" reply the scenario plays);
* the second report of the Phú Đa market fire merged into the first one's case;
* the missed call turned into one callback task, returned by the call-taker;
* the knife fight (P1, nobody acknowledges) escalating to the Staff Office duty leader and then
  to the Director, who acknowledges through his alert's link and records a directive.

About 60 s of scenario (the Director's acknowledgement is scripted at 58 s) and a few seconds of
settling, on the pipeline fixture of the other e2e tests.
"""

from __future__ import annotations

import pytest

from hotline.contracts import CaseEvent
from hotline_cli.pipeline import Pipeline
from hotline_cli.settings import CliSettings
from hotline_cli.simulate import load_scenario, play

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

SCENARIO = load_scenario("day")
# The timeouts `make run` gives the dispatcher for this scenario (P1 levels every 12 s).
ESCALATION_TIMEOUTS_S = dict(SCENARIO.escalation_timeouts_s)


def cli_settings(pipeline: Pipeline) -> CliSettings:
    return CliSettings(
        kafka_bootstrap_servers=pipeline.kafka_bootstrap,
        topic_namespace=pipeline.namespace,
        mongodb_uri=pipeline.mongodb_uri,
        mongodb_database=pipeline.database or "",
        ingest_url=pipeline.url("ingest"),
        classifier_url=pipeline.url("classifier"),
        dispatcher_url=pipeline.url("dispatcher"),
        notifier_url=pipeline.url("notifier"),
        sandbox_url=pipeline.url("sandbox"),
    )


def events_of(case_events: list[CaseEvent], case_id: str, kind: str) -> list[CaseEvent]:
    return [e for e in case_events if e.case_id == case_id and e.type.value == kind]


async def test_the_day_scenario_keeps_its_promises(pipeline: Pipeline) -> None:
    played = await play(cli_settings(pipeline), SCENARIO, quiet=True, settle_s=20.0)
    result, seen, player = played.result, played.observer, played.player
    messages = [s.id for s in SCENARIO.steps if not s.act]

    # 35 messages and calls, every one accepted by ingest, triaged and decided.
    assert len(messages) == 35
    assert result.rejected == {}, result
    assert sorted(s for s in player.accepted_steps if s in messages) == sorted(messages)
    assert player.accepted_steps.count("r_theft+") == 1  # the officer's "OK <case>" reply
    assert set(messages) <= set(seen.triaged), set(messages) - set(seen.triaged)
    assert set(messages) <= set(seen.decision_of_step), set(messages) - set(seen.decision_of_step)

    # One duplicate: the second report of the market fire joins the first one's case.
    actions = result.decisions
    assert actions.get("merged", 0) == 1, actions
    fire1, fire2 = seen.decision_of_step["r_fire1"], seen.decision_of_step["r_fire2"]
    assert fire1.action.value == "new_case"
    assert fire2.action.value == "merged" and fire2.case_id == fire1.case_id

    # One callback task, for the missed call, returned by the call-taker.
    assert actions.get("callback", 0) == 1, actions
    callback = seen.decision_of_step["miss1"]
    assert callback.action.value == "callback" and callback.case_id
    assert events_of(seen.case_events, callback.case_id, "callback_done")

    # The knife fight: P1, unacknowledged, up the chain to the Staff Office leader, then the
    # Director; he acknowledges (through his alert's link) and gives a directive.
    knife = seen.decision_of_step["r_knife"]
    assert (knife.action.value, knife.priority.value) == ("new_case", "P1")
    case = knife.case_id
    assert case is not None
    escalations = sorted(
        events_of(seen.case_events, case, "escalated"), key=lambda e: int(e.data["level"])
    )
    roles = [(int(e.data["level"]), str(e.data["role"])) for e in escalations]
    assert roles[:3] == [(1, "commander"), (2, "staff_leader"), (3, "director")], roles
    leader, director = escalations[1], escalations[2]
    assert leader.at < director.at
    sent = {
        level: {d.recipient_role for d in seen.alerts[(case, level)] if d.status.value == "sent"}
        for level in (2, 3)
    }
    assert sent == {2: {"staff_leader"}, 3: {"director"}}, sent

    acks = events_of(seen.case_events, case, "acknowledged")
    assert acks, "the knife case was never acknowledged"
    assert {(e.actor.id, e.actor.role) for e in acks} == {("director", "director")}, acks
    assert all(e.at >= director.at for e in acks)
    directives = events_of(seen.case_events, case, "directive_added")
    assert len(directives) == 1, directives
    assert directives[0].actor.role == "director"
    assert "truy bắt" in (directives[0].text or "")

    # Every other scripted acknowledgement (links at level 0, the Zalo reply) landed too.
    for act in SCENARIO.steps:
        if act.act in ("ack", "ack_reply") and act.case_of != "r_knife":
            acked = seen.case_of_step[act.case_of or ""]
            assert events_of(seen.case_events, acked, "acknowledged"), act
    # The assignee's "OK" reply stopped the notifier's escalation too (he had been alerted).
    theft = seen.case_of_step["r_theft"]
    assert not events_of(seen.case_events, theft, "escalated")
