"""The case state machine (pure): new → assigned → acknowledged → resolved → closed, and reopen."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from hotline.contracts.labels import Priority


class CaseState(StrEnum):
    NEW = "new"  # opened, nobody assigned yet (nobody on call: the Staff Office must decide)
    ASSIGNED = "assigned"  # an on-call officer is alerted, waiting for an acknowledgement
    ACKNOWLEDGED = "acknowledged"  # a person took it
    RESOLVED = "resolved"  # handled, with an outcome note; the citizens are told
    CLOSED = "closed"  # filed; only a reopen changes it again


OPEN_STATES = frozenset({CaseState.NEW, CaseState.ASSIGNED, CaseState.ACKNOWLEDGED})


class Transition(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    REASSIGN = "reassign"


TRANSITIONS: dict[Transition, tuple[frozenset[CaseState], CaseState]] = {
    Transition.ACKNOWLEDGE: (
        frozenset({CaseState.NEW, CaseState.ASSIGNED}),
        CaseState.ACKNOWLEDGED,
    ),
    Transition.RESOLVE: (OPEN_STATES, CaseState.RESOLVED),
    Transition.CLOSE: (frozenset({CaseState.RESOLVED}), CaseState.CLOSED),
    Transition.REOPEN: (frozenset({CaseState.RESOLVED, CaseState.CLOSED}), CaseState.ASSIGNED),
    Transition.REASSIGN: (OPEN_STATES, CaseState.ASSIGNED),
}


class InvalidTransition(Exception):
    """A transition that the case's current state does not allow (the API answers 409)."""

    def __init__(self, transition: Transition, current: CaseState) -> None:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[transition][0]))
        super().__init__(
            f"cannot {transition.value} a case that is {current.value} (allowed from: {allowed})"
        )
        self.transition = transition
        self.current = current


def next_state(current: CaseState, transition: Transition) -> CaseState:
    """The state after `transition`, or InvalidTransition naming the current state."""
    allowed, target = TRANSITIONS[transition]
    if current not in allowed:
        raise InvalidTransition(transition, current)
    return target


PRIORITY_RANK = {Priority.P1: 1, Priority.P2: 2, Priority.P3: 3, Priority.P4: 4}


def more_urgent(a: Priority, b: Priority) -> bool:
    """True when `a` is more urgent than `b` (P1 is the most urgent)."""
    return PRIORITY_RANK[a] < PRIORITY_RANK[b]


def format_case_id(prefix: str, day: date, number: int) -> str:
    """'HUE-20240124-0042': province prefix, local date, the day's sequence number."""
    return f"{prefix}-{day:%Y%m%d}-{number:04d}"
