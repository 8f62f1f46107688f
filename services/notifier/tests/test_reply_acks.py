"""An "OK HUE-…" reply stops the escalation only when it comes from somebody on its chain.

The dispatcher recognises any rostered officer's reply and publishes it twice: as an
`acknowledgement` decision (the sender as the reporter, no assignee) and as an `acknowledged`
case event (`via: reply`, the officer as the actor). Either route counts only for a person on
the escalation chain of the current cycle, at any level (the dispatcher applies the same rule
before it marks the case acknowledged); acknowledgements from the ops API (authenticated and
role-checked by the dispatcher) are accepted from anyone, as the Staff Office and the Director
take over cases they were never alerted for.
"""

from __future__ import annotations

from typing import Any

import pytest

from hotline.clock import ManualClock
from hotline.contracts import example
from hotline.contracts.events import CaseEvent, DispatchAction, DispatchDecision
from hotline_notifier.metrics import ACK_REJECTED
from hotline_sandbox.server import SandboxHandle

from .conftest import NotifierFactory, decision

pytestmark = pytest.mark.integration

CASE = "HUE-20240124-0042"
ACK_CLAIM = f"ack:{CASE}:0"


def reply(n: int, channel: str, address: str) -> DispatchDecision:
    """The decision the dispatcher publishes for an "OK <case>" reply (no assignee)."""
    return decision(
        decision_id=f"dec-reply-{n}",
        event_id=f"reply-{n}",
        action=DispatchAction.ACKNOWLEDGEMENT,
        alert=False,
        assignee=None,
        escalation=[],
        informed=[],
        summary="",
        citizen_reply="none",
        reporter={"channel": channel, "address": address},
    )


def acked(actor: dict[str, Any], via: str, n: int = 1) -> CaseEvent:
    data = example("CaseEvent")
    data.update(event_id=f"ack-event-{n}", source="dispatcher", actor=actor, data={"via": via})
    return CaseEvent.model_validate(data)


def rejected() -> float:
    return float(ACK_REJECTED.labels("wrong_recipient")._value.get())


async def test_a_reply_from_someone_off_the_chain_does_not_stop_the_escalation(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier()
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    before = rejected()
    # A number nobody on the chain has, and a rostered officer of another case (case event).
    await n.handlers.handle_decision(reply(1, "sms", "+84900100056"))
    await n.handlers.handle_case_event(
        acked({"id": "phu-vang-o2", "role": "officer"}, "reply", n=2)
    )
    assert await n.repo.get_claim(ACK_CLAIM) is None
    assert rejected() == before + 2
    clock.advance(130)
    assert (await n.engine.tick()).escalated == 1  # the chain goes on: the commander is alerted
    assert [m.to for m in sandbox.sandbox.store.messages()] == ["7700112233445566", "+84905111000"]


async def test_the_commander_may_take_the_case_before_it_reaches_him(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier()
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    # The commander (level 1, not alerted yet) answers OK from 0905… (his +84905… number).
    await n.handlers.handle_decision(reply(3, "sms", "0905111000"))
    claim = await n.repo.get_claim(ACK_CLAIM)
    assert claim is not None
    assert (claim["by"], claim["role"], claim["via"]) == ("hue-city-cmd", "commander", "reply:sms")
    clock.advance(600)
    assert (await n.engine.tick()).escalated == 0
    assert [m.to for m in sandbox.sandbox.store.messages()] == ["7700112233445566"]


async def test_the_alerted_officer_replying_from_zalo_acknowledges(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier()
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    assert await n.handlers.handle_decision(reply(1, "zalo", "7700112233445566")) == []
    claim = await n.repo.get_claim(ACK_CLAIM)
    assert claim is not None and (claim["by"], claim["via"]) == ("hue-city-o1", "reply:zalo")
    clock.advance(600)
    assert (await n.engine.tick()).escalated == 0
    assert len(sandbox.sandbox.store.messages()) == 1


async def test_a_reply_case_event_counts_only_for_an_actor_on_the_chain(
    make_notifier: NotifierFactory, clock: ManualClock
) -> None:
    n = await make_notifier()
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    # An officer of another unit: ignored.
    await n.handlers.handle_case_event(acked({"id": "pc02-o1", "role": "officer"}, "reply"))
    assert await n.repo.get_claim(ACK_CLAIM) is None
    await n.handlers.handle_case_event(
        acked({"id": "hue-city-o1", "role": "officer"}, "reply", n=2)
    )
    claim = await n.repo.get_claim(ACK_CLAIM)
    assert claim is not None and (claim["by"], claim["via"]) == ("hue-city-o1", "reply")


async def test_the_ops_api_acknowledges_for_someone_never_alerted(
    make_notifier: NotifierFactory, clock: ManualClock
) -> None:
    n = await make_notifier()
    await n.handlers.handle_decision(decision(informed=[], citizen_reply="none"))
    await n.handlers.handle_case_event(acked({"id": "director", "role": "director"}, "api"))
    claim = await n.repo.get_claim(ACK_CLAIM)
    assert claim is not None and (claim["by"], claim["via"]) == ("director", "api")
    clock.advance(600)
    assert (await n.engine.tick()).escalated == 0
