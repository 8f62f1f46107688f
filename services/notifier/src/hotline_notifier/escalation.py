"""Escalation: pure state transitions, and the claim-based engine that executes them.

The engine follows grafana/oncall's escalation discipline: a step is *claimed* first
(`esc:<case>:<cycle>:<level>`, a unique insert, atomic on FerretDB and MongoDB), the saved
state is re-checked after the claim (a stale or duplicate trigger does nothing), the step is
carried out, the state is advanced, and only then is the next step scheduled (`next_due_at`).
A step whose owner died after claiming it is taken over once its lease has expired; every
delivery is also claimed on its own, so a takeover never sends a message twice.

Timers are durable: the scheduler sweeps MongoDB for the open alerts (at start-up, then every
`sweep_s` or more), so a restart or another replica carries on where the previous one stopped.
A sweep remembers the timer of every open alert it reads, and between sweeps a tick reads only
the alerts whose timers this process knows are due, by `_id` (FerretDB reads the whole
collection for any other query, which at thousands of alerts cost more CPU than everything else
the notifier asked of it). So the sweep is only there to learn of alerts another replica wrote
since the last one (or one that died wrote): it waits at least SWEEP_SPACING times as long as
the previous sweep took, which bounds its share of the database however many alerts are open
(at 10,000 unacknowledged alerts a sweep took 2-8 s of FerretDB's time, every 30 s).

Code that needs "now" gets the injected `Clock`; tests call `tick()` with a `ManualClock`
instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from hotline.clock import LOCAL_TZ, Clock, ensure_utc
from hotline.contracts.events import (
    Actor,
    CaseEvent,
    CaseEventType,
    DeadLetterReason,
    DeliveryOutcome,
    DeliveryPurpose,
    EscalationLevel,
    Recipient,
)
from hotline.contracts.labels import Priority
from hotline.contracts.topics import TopicNames
from hotline.ids import stable_id
from hotline.kafka import Outgoing, Publisher, PublishError
from hotline.logging import get_logger
from hotline.runner import Transient, make_dead_letter

from .compose import Composer
from .delivery import Deliverer, FirstAlert, Notification, Report
from .metrics import ACK_LATENCY, ESCALATIONS, UNACKNOWLEDGED
from .models import AlertState, AlertStatus
from .repository import Repository
from .tokens import AckTokens

log = get_logger(__name__)

NOTIFIER_ACTOR = Actor(id="notifier", role="service")
EXPIRY_EVERY = timedelta(hours=1)
SWEEP_SPACING = 10.0


# --------------------------------------------------------------------------- pure policy


@dataclass(frozen=True)
class Policy:
    quiet_start: time
    quiet_end: time
    quiet_priorities: frozenset[Priority]
    reminder_interval: timedelta
    max_reminders: int
    top_level_repeats: int


def in_quiet_hours(now: datetime, policy: Policy) -> bool:
    local = now.astimezone(LOCAL_TZ).time()
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_applies(priority: Priority, now: datetime, policy: Policy) -> bool:
    """P3/P4 alerts wait for the end of quiet hours; P1 and P2 never wait."""
    return priority in policy.quiet_priorities and in_quiet_hours(now, policy)


def quiet_end_after(now: datetime, policy: Policy) -> datetime:
    """The next end of quiet hours after `now` (in UTC)."""
    local = now.astimezone(LOCAL_TZ)
    end = local.replace(
        hour=policy.quiet_end.hour, minute=policy.quiet_end.minute, second=0, microsecond=0
    )
    if end <= local:
        end += timedelta(days=1)
    return ensure_utc(end)


class StepKind(StrEnum):
    WAIT = "wait"  # nothing to send; reschedule at `due` (None: stop the timer)
    DEFER = "defer"  # quiet hours: try again at `due`
    SEND_LEVEL = "send_level"  # alert the recipients of `level`
    REPEAT_TOP = "repeat_top"  # the chain is exhausted: alert the top level again (n)
    REMIND = "remind"  # acknowledged but not resolved: reminder n
    EXHAUST = "exhaust"  # nothing left to try
    CLOSE = "close"  # resolved


@dataclass(frozen=True)
class Step:
    kind: StepKind
    level: int | None = None
    n: int | None = None
    due: datetime | None = None


def next_step(
    state: AlertState,
    now: datetime,
    policy: Policy,
    *,
    acked_at: datetime | None,
    resolved: bool,
) -> Step:
    """What the escalation timer of `state` should do at `now` (no I/O)."""
    if resolved:
        return Step(StepKind.CLOSE)
    if acked_at is not None:
        n = state.reminders + 1
        if n > policy.max_reminders:
            return Step(StepKind.WAIT, due=None)
        due = acked_at + policy.reminder_interval * n
        if now < due:
            return Step(StepKind.WAIT, due=due)
        if quiet_applies(state.priority, now, policy):
            return Step(StepKind.DEFER, due=quiet_end_after(now, policy))
        return Step(StepKind.REMIND, n=n, due=acked_at + policy.reminder_interval * (n + 1))
    if state.next_due_at is not None and now < state.next_due_at:
        return Step(StepKind.WAIT, due=state.next_due_at)
    if quiet_applies(state.priority, now, policy):
        return Step(StepKind.DEFER, due=quiet_end_after(now, policy))
    levels = sorted(lvl.level for lvl in state.chain)
    following = [lvl for lvl in levels if lvl > state.level]
    if following:
        return Step(StepKind.SEND_LEVEL, level=following[0])
    if state.repeats < policy.top_level_repeats and levels:
        return Step(StepKind.REPEAT_TOP, level=levels[-1], n=state.repeats + 1)
    return Step(StepKind.EXHAUST)


def level_of(state: AlertState, level: int) -> EscalationLevel:
    return next(lvl for lvl in state.chain if lvl.level == level)


# --------------------------------------------------------------------------- engine


@dataclass
class StepResult:
    outgoing: list[Outgoing] = field(default_factory=list)
    reached: bool = False
    in_flight: bool = False


@dataclass
class TickReport:
    due: int = 0
    escalated: int = 0
    reminded: int = 0
    deferred: int = 0
    skipped: int = 0
    closed: int = 0


@dataclass
class AckResult:
    applied: bool
    state: AlertState | None
    event: CaseEvent | None = None


class EscalationEngine:
    """Starts alert chains, advances them on their timers, and applies acknowledgements."""

    def __init__(
        self,
        *,
        repo: Repository,
        deliverer: Deliverer,
        composer: Composer,
        tokens: AckTokens,
        publisher: Publisher,
        topics: TopicNames,
        clock: Clock,
        policy: Policy,
        lease_s: float,
        batch: int = 200,
        interval_s: float = 1.0,
        retention: timedelta = timedelta(days=30),
        sweep_s: float = 30.0,
    ) -> None:
        self.repo = repo
        self.deliverer = deliverer
        self.composer = composer
        self.tokens = tokens
        self.publisher = publisher
        self.topics = topics
        self.clock = clock
        self.policy = policy
        self.lease_s = lease_s
        self.batch = batch
        self.interval_s = interval_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._ticks = 0
        self.sweep_s = sweep_s
        self.retention = retention
        self._last_expiry: datetime | None = None

    # ------------------------------------------------------------------ sending one level
    async def send_level(
        self, state: AlertState, level: int, *, step: str, repeat: bool = False
    ) -> StepResult:
        """Alert every recipient of `level` (and, at level 0, the informed) concurrently."""
        purpose = (
            DeliveryPurpose.CALLBACK_TASK
            if state.purpose == DeliveryPurpose.CALLBACK_TASK.value and level == 0
            else DeliveryPurpose.ALERT
            if level == 0 and not repeat
            else DeliveryPurpose.ESCALATION
        )
        now = self.clock.now()
        first = (
            FirstAlert(state.received_at, state.priority.value)
            if level == 0 and state.cycle == 0 and not repeat
            else None
        )
        recipients = level_of(state, level).recipients
        notes: list[Notification] = []
        for r in recipients:
            token = self.tokens.issue(
                case_id=state.case_id,
                cycle=state.cycle,
                level=level,
                recipient_id=r.person_id,
                now=now,
            )
            notes.append(
                self.composer.for_level(
                    state, level, r, token, purpose=purpose, step=step, first_alert=first
                )
            )
        chain_ids = {r.person_id for r in recipients}
        informs = (
            [
                self.composer.for_level(
                    state, level, r, None, purpose=DeliveryPurpose.INFORM, step="inform"
                )
                for r in state.informed
                if r.person_id not in chain_ids
            ]
            if level == 0 and not repeat
            else []
        )
        reports = await asyncio.gather(*(self.deliverer.deliver(n) for n in [*notes, *informs]))
        result = StepResult()
        for n, report in zip([*notes, *informs], reports, strict=True):
            result.outgoing.extend(self.outputs(n, report))
        chain_reports = reports[: len(notes)]
        result.reached = any(r.sent for r in chain_reports)
        result.in_flight = any(r.in_flight for r in chain_reports)
        return result

    def outputs(self, n: Notification, report: Report) -> list[Outgoing]:
        """The deliveries topic records of one notification (plus its dead letter, if any)."""
        key = n.case_id or n.recipient_id
        outs = [Outgoing.of(self.topics.deliveries, o, key=key) for o in report.outcomes]
        if report.dead and not report.replayed:
            outs.append(self.dead_letter(n, report.outcomes))
        return outs

    def dead_letter(self, n: Notification, outcomes: list[DeliveryOutcome]) -> Outgoing:
        """An undeliverable notification, for operators (no personal data in it)."""
        value = json.dumps(
            {
                "case_id": n.case_id,
                "source_id": n.source_id,
                "step": n.step,
                "purpose": n.purpose.value,
                "recipient_id": n.recipient_id,
                "outcomes": [o.model_dump(mode="json") for o in outcomes],
            },
            ensure_ascii=False,
        ).encode()
        letter = make_dead_letter(
            service="notifier",
            topic=self.topics.deliveries,
            partition=None,
            offset=None,
            key=(n.case_id or n.recipient_id).encode(),
            value=value,
            reason=DeadLetterReason.UNDELIVERABLE,
            detail=f"every channel of {n.recipient_id} failed for {n.purpose.value}",
            attempts=sum(o.attempts for o in outcomes),
        )
        return Outgoing.of(self.topics.deadletter, letter, key=n.case_id or n.recipient_id)

    # ------------------------------------------------------------------ starting a chain
    async def start(self, state: AlertState) -> list[Outgoing]:
        """Create the durable timer and alert level 0 (now, or after quiet hours).

        Safe to repeat: a redelivered decision finds the stored alert and the delivery claims,
        and republishes the stored outcomes instead of sending again.
        """
        now = self.clock.now()
        if quiet_applies(state.priority, now, self.policy):
            state.status = AlertStatus.DEFERRED
            state.level = -1
            state.next_due_at = quiet_end_after(now, self.policy)
        created, stored = await self.repo.create_alert(state, now)
        if not created and (stored.source_id != state.source_id or stored.cycle != state.cycle):
            return []  # another decision or a reassignment owns this case's chain now
        if stored.status == AlertStatus.DEFERRED:
            return [
                Outgoing.of(
                    self.topics.deliveries,
                    self.deliverer.suppressed(
                        self.composer.for_level(
                            stored, 0, r, None, purpose=DeliveryPurpose.ALERT, step="L0"
                        ),
                        f"quiet hours: deferred to {stored.next_due_at}",
                        step="deferred",
                    ),
                    key=stored.case_id,
                )
                for r in level_of(stored, 0).recipients
            ]
        if stored.level != 0 or stored.status != AlertStatus.ALERTING:
            return []  # the scheduler has moved past level 0 already
        result = await self.send_level(stored, 0, step="L0")
        if result.in_flight:
            raise Transient("a delivery of this alert is in flight elsewhere; retrying")
        if not result.reached:
            await self.repo.update_alert(stored.case_id, now, next_due_at=now)
            self.wake()
        return result.outgoing

    # ------------------------------------------------------------------ acknowledgements
    async def acknowledge(
        self,
        case_id: str,
        *,
        actor: Actor,
        via: str,
        cycle: int | None = None,
        level: int | None = None,
    ) -> AckResult:
        """Record the first acknowledgement of the case's current cycle; later ones are no-ops."""
        now = self.clock.now()
        state = await self.repo.get_alert(case_id)
        if state is None:
            return AckResult(False, None)
        current = state.cycle if cycle is None else cycle
        if current != state.cycle:
            return AckResult(False, state)
        won = await self.repo.claim(
            f"ack:{case_id}:{current}", now, by=actor.id, role=actor.role, via=via, acked_at=now
        )
        if not won:
            return AckResult(False, state)
        await self.repo.update_alert(
            case_id,
            now,
            status=AlertStatus.ACKNOWLEDGED,
            acked_at=now,
            acked_by=actor.id,
            reminders=0,
            next_due_at=now + self.policy.reminder_interval,
        )
        ACK_LATENCY.labels(state.priority.value).observe(
            max(0.0, (now - state.created_at).total_seconds())
        )
        event = CaseEvent(
            event_id=stable_id("notifier-ack", case_id, str(current)),
            case_id=case_id,
            type=CaseEventType.ACKNOWLEDGED,
            source="notifier",
            actor=actor,
            at=now,
            case_state="acknowledged",
            priority=state.priority,
            data={"via": via, "level": level if level is not None else state.level},
        )
        log.info(
            "acknowledged",
            extra={"case_id": case_id, "cycle": current, "via": via, "by": actor.id},
        )
        return AckResult(True, state, event)

    async def resolve(self, case_id: str) -> None:
        """The case was resolved or closed: its current cycle stops (a reopening starts the
        next cycle, which this marker does not cover)."""
        now = self.clock.now()
        state = await self.repo.get_alert(case_id)
        cycle = state.cycle if state is not None else 0
        await self.repo.claim(f"resolved:{case_id}:{cycle}", now)
        if state is not None:
            await self.repo.update_alert(
                case_id, now, status=AlertStatus.RESOLVED, next_due_at=None
            )

    # ------------------------------------------------------------------ the timer
    def wake(self) -> None:
        """Run the next tick now (an undeliverable level escalates at once)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """The scheduler loop: tick, then sleep until the interval passes or `wake()`."""
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while not self._stopping.is_set():
            started = loop.time()
            sweep = started >= next_sweep
            try:
                await self.tick(sweep=sweep)
            except Exception:
                log.exception("scheduler tick failed; retrying next interval")
            if sweep:
                took = loop.time() - started
                next_sweep = loop.time() + max(self.sweep_s, SWEEP_SPACING * took)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)

    async def tick(self, *, sweep: bool = True) -> TickReport:
        """Advance every alert whose timer is due at `clock.now()` (one pass).

        `sweep=False`: only the alerts whose timers this process knows (see the module
        docstring); the loop sweeps every `sweep_s`.
        """
        now = self.clock.now()
        report = TickReport()
        await self.flush_outbox()
        counts: dict[str, int] | None = None
        if sweep:
            due, counts = await self.repo.sweep(now, self.batch)
        else:
            due = await self.repo.due_tracked(now, self.batch)
        report.due = len(due)
        semaphore = asyncio.Semaphore(16)

        async def one(state: AlertState) -> None:
            async with semaphore:
                await self._advance(state, now, report)

        await asyncio.gather(*(one(s) for s in due))
        self._ticks += 1
        if counts is not None:  # the sweep counted the unacknowledged alerts as it read them
            self.set_gauge(counts)
        if self._last_expiry is None or now - self._last_expiry >= EXPIRY_EVERY:
            self._last_expiry = now
            removed = await self.repo.expire(now - self.retention)
            if removed:
                log.info("expired old notifier records", extra={"removed": removed})
        return report

    @staticmethod
    def set_gauge(counts: dict[str, int]) -> None:
        for priority in Priority:
            UNACKNOWLEDGED.labels(priority.value).set(counts.get(priority.value, 0))

    async def _advance(self, state: AlertState, now: datetime, report: TickReport) -> None:
        # Two lookups by _id (FerretDB scans the whole collection for an `$in`).
        ack, resolved = await asyncio.gather(
            self.repo.get_claim(f"ack:{state.case_id}:{state.cycle}"),
            self.repo.get_claim(f"resolved:{state.case_id}:{state.cycle}"),
        )
        acked_at = ensure_utc(ack["acked_at"]) if ack else None
        step = next_step(
            state,
            now,
            self.policy,
            acked_at=acked_at,
            resolved=resolved is not None,
        )
        case = state.case_id
        if step.kind == StepKind.CLOSE:
            await self.repo.update_alert(case, now, status=AlertStatus.RESOLVED, next_due_at=None)
            report.closed += 1
            return
        if step.kind == StepKind.WAIT:
            fields: dict[str, Any] = {"next_due_at": step.due}
            if acked_at is not None and state.status != AlertStatus.ACKNOWLEDGED:
                fields.update(status=AlertStatus.ACKNOWLEDGED, acked_at=acked_at)
                fields["acked_by"] = ack.get("by") if ack else None
            await self.repo.update_alert(case, now, **fields)
            report.skipped += 1
            return
        if step.kind == StepKind.DEFER:
            await self.repo.update_alert(case, now, next_due_at=step.due)
            report.deferred += 1
            return
        if step.kind == StepKind.EXHAUST:
            await self.repo.update_alert(case, now, status=AlertStatus.EXHAUSTED, next_due_at=None)
            return
        if step.kind == StepKind.REMIND:
            assert step.n is not None and ack is not None
            if await self._claim_step(f"rem:{case}:{state.cycle}:{step.n}", now, state):
                outs = await self._remind(state, str(ack.get("by", "")), step.n)
                await self.repo.update_alert(
                    case,
                    now,
                    status=AlertStatus.ACKNOWLEDGED,
                    reminders=step.n,
                    next_due_at=step.due,
                )
                await self.publish(outs)
                report.reminded += 1
            else:
                report.skipped += 1
            return
        assert step.level is not None
        if step.kind == StepKind.REPEAT_TOP:
            key, tag = f"rpt:{case}:{state.cycle}:{step.n}", f"R{step.n}"
        else:
            key, tag = f"esc:{case}:{state.cycle}:{step.level}", f"L{step.level}"
        if not await self._claim_step(key, now, state):
            report.skipped += 1
            return
        # Re-check after the claim: an acknowledgement may have landed meanwhile.
        if await self.repo.get_claim(f"ack:{case}:{state.cycle}") is not None:
            report.skipped += 1
            return
        result = await self.send_level(
            state, step.level, step=tag, repeat=step.kind == StepKind.REPEAT_TOP
        )
        timeout = level_of(state, step.level).timeout_s
        fields = {
            "status": AlertStatus.ALERTING,
            "level": step.level,
            "level_sent_at": now,
            "next_due_at": now + timedelta(seconds=timeout) if result.reached else now,
        }
        if step.kind == StepKind.REPEAT_TOP:
            fields["repeats"] = step.n
        await self.repo.update_alert(case, now, **fields)
        outs = result.outgoing
        if step.level > 0 or step.kind == StepKind.REPEAT_TOP:
            ESCALATIONS.labels(str(step.level)).inc()
            outs.append(self._escalated_event(state, step, now, result.reached))
        await self.publish(outs)
        if not result.reached:
            self.wake()
        report.escalated += 1

    async def _claim_step(self, key: str, now: datetime, state: AlertState) -> bool:
        """Claim a step; take it over if its owner claimed it but never finished (lease)."""
        if await self.repo.claim(key, now):
            return True
        existing = await self.repo.get_claim(key)
        if existing is None:
            return await self.repo.claim(key, now)
        claimed_at = ensure_utc(existing["at"])
        if (now - claimed_at).total_seconds() < self.lease_s:
            return False
        log.warning("taking over a stale escalation step", extra={"step": key[:80]})
        return await self.repo.take_over(key, existing["at"], now)

    def _escalated_event(
        self, state: AlertState, step: Step, now: datetime, reached: bool
    ) -> Outgoing:
        assert step.level is not None
        level = level_of(state, step.level)
        event = CaseEvent(
            event_id=stable_id(
                "notifier-escalated", state.case_id, str(state.cycle), str(step.level), str(step.n)
            ),
            case_id=state.case_id,
            type=CaseEventType.ESCALATED,
            source="notifier",
            actor=NOTIFIER_ACTOR,
            at=now,
            priority=state.priority,
            recipients=level.recipients,
            data={
                "level": step.level,
                "role": level.role.value,
                "from_level": state.level,
                "cycle": state.cycle,
                "repeat": step.n if step.kind == StepKind.REPEAT_TOP else 0,
                "reason": "timeout" if state.level >= 0 else "quiet_hours_ended",
                "delivered": reached,
            },
        )
        return Outgoing.of(self.topics.case_events, event, key=state.case_id)

    async def _remind(self, state: AlertState, acked_by: str, n: int) -> list[Outgoing]:
        recipients: list[Recipient] = [
            r for r in state.recipients_up_to(max(state.level, 0)) if r.person_id == acked_by
        ] or level_of(state, min(lvl.level for lvl in state.chain)).recipients
        outs: list[Outgoing] = []
        for r in recipients:
            note = self.composer.for_level(
                state, max(state.level, 0), r, None, purpose=DeliveryPurpose.REMINDER, step=f"M{n}"
            )
            report = await self.deliverer.deliver(note)
            outs.extend(self.outputs(note, report))
        return outs

    async def publish(self, outs: list[Outgoing]) -> None:
        """Publish what a step produced. A broker that is away a few seconds is waited for;
        beyond that the records go to the durable outbox, which every tick flushes, so an
        acknowledgement, an escalation or a delivery outcome is never dropped."""
        delay = 0.2
        for attempt in range(4):
            try:
                await self.publisher.publish_many(outs)
                return
            except PublishError:
                if attempt == 3:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        log.warning(
            "broker unavailable; keeping outputs in the outbox", extra={"records": len(outs)}
        )
        await self.repo.stash_outgoing(outs, self.clock.now())

    async def flush_outbox(self) -> int:
        """Publish stashed records, oldest first; stop at the first failure (order kept)."""
        flushed = 0
        while True:
            stashed = await self.repo.stashed_outgoing()
            if not stashed:
                return flushed
            try:
                await self.publisher.publish_many([o for _, o in stashed])
            except PublishError:
                return flushed
            await self.repo.drop_outgoing([i for i, _ in stashed])
            flushed += len(stashed)
