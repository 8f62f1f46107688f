"""Kafka handlers: dispatch decisions and case events in, deliveries and case events out.

Both are safe to run twice (the runner redelivers after a crash or a rebalance): alerts and
deliveries are claimed in MongoDB, and a repeat republishes the stored outcomes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import timedelta

from hotline.clock import LOCAL_TZ, Clock
from hotline.contracts.events import (
    Actor,
    CaseEvent,
    CaseEventType,
    CitizenReply,
    DeliveryOutcome,
    DeliveryPurpose,
    DirectiveIssuer,
    DispatchAction,
    DispatchDecision,
    EscalationLevel,
    Recipient,
    Reporter,
)
from hotline.contracts.labels import Category, Channel, Priority
from hotline.contracts.topics import TopicNames
from hotline.kafka import Outgoing
from hotline.logging import get_logger
from hotline.runner import Message

from .compose import Composer, citizen_id
from .delivery import Deliverer
from .escalation import EscalationEngine
from .metrics import ACK_REJECTED
from .models import AlertState, AlertStatus
from .phones import comparable, is_phone
from .repository import Repository
from .tokens import RejectReason

log = get_logger(__name__)


class Handlers:
    def __init__(
        self,
        *,
        engine: EscalationEngine,
        deliverer: Deliverer,
        composer: Composer,
        repo: Repository,
        topics: TopicNames,
        clock: Clock,
        default_timeout_s: int,
    ) -> None:
        self.engine = engine
        self.deliverer = deliverer
        self.composer = composer
        self.repo = repo
        self.topics = topics
        self.clock = clock
        self.default_timeout_s = default_timeout_s

    # ------------------------------------------------------------------ Kafka adapters
    async def on_dispatched(self, message: Message[DispatchDecision]) -> Sequence[Outgoing]:
        return await self.handle_decision(message.value)

    async def on_case_event(self, message: Message[CaseEvent]) -> Sequence[Outgoing]:
        return await self.handle_case_event(message.value)

    # ------------------------------------------------------------------ decisions
    async def handle_decision(self, d: DispatchDecision) -> list[Outgoing]:
        """The officers' alert and the citizen's reply go out together: their delivery claims
        and results share the database's grouped inserts (one round trip instead of two), and
        the citizen's receipt does not wait for the officers' providers. Each is idempotent on
        its own (delivery claims), so a retry after either failed replays what the other sent.
        """
        steps: list[Awaitable[list[Outgoing]]] = []
        if d.action in (DispatchAction.NEW_CASE, DispatchAction.CALLBACK) and (
            d.alert or d.action == DispatchAction.CALLBACK
        ):
            steps.append(self._alert(d))
        elif d.action == DispatchAction.ACKNOWLEDGEMENT and d.case_id:
            steps.append(self._ack_from_channel(d))
        if d.citizen_reply != CitizenReply.NONE:
            steps.append(self._citizen_reply(d))
        return await all_of(steps)

    def _chain(self, d: DispatchDecision) -> list[EscalationLevel]:
        if d.escalation:
            return sorted(d.escalation, key=lambda lvl: lvl.level)
        if d.assignee is not None:
            return [
                EscalationLevel(
                    level=0,
                    role=d.assignee.role,
                    recipients=[d.assignee],
                    timeout_s=self.default_timeout_s,
                )
            ]
        return []

    async def _alert(self, d: DispatchDecision) -> list[Outgoing]:
        chain = self._chain(d)
        if not chain or not chain[0].recipients:
            log.warning("decision has nobody to alert", extra={"decision_id": d.decision_id})
            return []
        now = self.clock.now()
        purpose = (
            DeliveryPurpose.CALLBACK_TASK
            if d.action == DispatchAction.CALLBACK
            else DeliveryPurpose.ALERT
        )
        state = AlertState(
            case_id=d.case_id or f"task-{d.decision_id}",
            source_id=d.decision_id,
            source_topic=self.topics.dispatched,
            purpose=purpose.value,
            priority=d.priority,
            category=d.category,
            location=d.location,
            locality=d.locality,
            unit=d.responsible_unit,
            summary=d.summary,
            reporter=d.reporter,
            received_at=d.received_at,
            chain=chain,
            informed=d.informed,
            status=AlertStatus.ALERTING,
            level=0,
            next_due_at=now + timedelta(seconds=chain[0].timeout_s),
            created_at=now,
            level_sent_at=now,
        )
        return await self.engine.start(state)

    async def _ack_from_channel(self, d: DispatchDecision) -> list[Outgoing]:
        """An officer replied "OK <case>" on their channel (recognised by the dispatcher).

        Only somebody on this case's escalation chain (any level of the current cycle: a
        commander may take a case before it reaches him; not the informed) may stop its
        escalation this way, the same rule the dispatcher applies before it marks the case
        acknowledged: the sender is found among them by the channel and address they replied
        from. Any other rostered officer's "OK" is ignored here (counted as `wrong_recipient`),
        as the ack link refuses a stranger's token.
        """
        assert d.case_id is not None
        state = await self.repo.get_alert(d.case_id)
        if state is None:
            return []  # nothing alerted (yet) for this case: nothing to acknowledge
        sender = chain_sender(state, d.reporter)
        if sender is None and d.assignee is not None:
            sender = next((r for r in on_chain(state) if r.person_id == d.assignee.person_id), None)
        if sender is None:
            self._refuse_reply(d.case_id, state, "the reply's sender is not on the chain")
            return []
        actor = Actor(id=sender.person_id, role=sender.role.value, name=sender.name)
        await self.engine.acknowledge(d.case_id, actor=actor, via=f"reply:{d.reporter.channel}")
        # The dispatcher records the acknowledgement on the case itself: no event from us.
        return []

    def _refuse_reply(self, case_id: str, state: AlertState, why: str) -> None:
        ACK_REJECTED.labels(RejectReason.WRONG_RECIPIENT.value).inc()
        log.warning(
            "reply acknowledgement ignored",
            extra={"case_id": case_id, "cycle": state.cycle, "level": state.level, "why": why},
        )

    async def _citizen_reply(self, d: DispatchDecision) -> list[Outgoing]:
        purpose = (
            DeliveryPurpose.CITIZEN_COURTESY
            if d.citizen_reply == CitizenReply.COURTESY
            else DeliveryPurpose.CITIZEN_RECEIPT
        )
        now = self.clock.now()
        note = self.composer.for_citizen(
            source_id=d.decision_id,
            purpose=purpose,
            reporter=d.reporter,
            case_id=d.case_id,
            now=now,
            received_at=d.received_at,
        )
        if not note.contacts:
            return [self._out(self.deliverer.suppressed(note, "no address to answer on"))]
        if purpose == DeliveryPurpose.CITIZEN_COURTESY and not await self._first_courtesy_today(
            d.reporter, d.decision_id
        ):
            return [self._out(self.deliverer.suppressed(note, "courtesy already sent today"))]
        report = await self.deliverer.deliver(note)
        return self.engine.outputs(note, report)

    async def _first_courtesy_today(self, reporter: Reporter, decision_id: str) -> bool:
        """At most one courtesy reply per citizen per local day (a redelivery still passes)."""
        now = self.clock.now()
        day = now.astimezone(LOCAL_TZ).date().isoformat()
        key = f"courtesy:{citizen_id(reporter)}:{day}"
        if await self.repo.claim(key, now, decision_id=decision_id):
            return True
        existing = await self.repo.get_claim(key)
        return existing is not None and existing.get("decision_id") == decision_id

    def _out(self, outcome: DeliveryOutcome) -> Outgoing:
        return Outgoing.of(
            self.topics.deliveries, outcome, key=outcome.case_id or outcome.recipient_id
        )

    # ------------------------------------------------------------------ case events
    async def handle_case_event(self, e: CaseEvent) -> list[Outgoing]:
        if e.source == "notifier":
            return []  # our own acknowledgement / escalation events: already applied
        if e.type == CaseEventType.ACKNOWLEDGED:
            via = str(e.data.get("via") or e.source)
            if via == "reply" and not await self._reply_from_chain(e):
                return []
            # Other routes (the ops API, the console) were authenticated and role-checked
            # by the dispatcher: the Staff Office or the Director may take any case.
            await self.engine.acknowledge(e.case_id, actor=e.actor, via=via)
            return []
        if e.type == CaseEventType.RESOLVED:
            await self.engine.resolve(e.case_id)
            return await self._closure(e)
        if e.type == CaseEventType.CLOSED:
            await self.engine.resolve(e.case_id)
            return []
        if e.type in (CaseEventType.REASSIGNED, CaseEventType.REOPENED):
            # A reopened case is unacknowledged again: its assignee is alerted anew and the
            # chain restarts, exactly as for a new assignee.
            return await self._reassigned(e)
        if e.type == CaseEventType.OPENED and e.data.get("corrected_from"):
            # A message first taken for a greeting, now a case: its citizen is told the case
            # number, as every reporter is (the courtesy reply they got said nothing of it).
            return await self._receipts(e)
        if e.type in (CaseEventType.DIRECTIVE_ADDED, CaseEventType.REMINDER_DUE):
            return await self._directive(e)
        return []

    async def _reply_from_chain(self, e: CaseEvent) -> bool:
        """A channel reply the dispatcher recorded: only someone on the chain counts here."""
        state = await self.repo.get_alert(e.case_id)
        if state is None:
            return True  # nothing alerted: acknowledging is a no-op anyway
        if any(r.person_id == e.actor.id for r in on_chain(state)):
            return True
        self._refuse_reply(e.case_id, state, "the replying officer is not on the chain")
        return False

    async def _closure(self, e: CaseEvent) -> list[Outgoing]:
        return await self._to_reporters(e, DeliveryPurpose.CITIZEN_CLOSURE)

    async def _receipts(self, e: CaseEvent) -> list[Outgoing]:
        return await self._to_reporters(e, DeliveryPurpose.CITIZEN_RECEIPT)

    async def _to_reporters(self, e: CaseEvent, purpose: DeliveryPurpose) -> list[Outgoing]:
        outs: list[Outgoing] = []
        now = self.clock.now()
        for reporter in e.reporters:
            note = self.composer.for_citizen(
                source_id=e.event_id,
                purpose=purpose,
                reporter=reporter,
                case_id=e.case_id,
                now=now,
                received_at=None,
            )
            if not note.contacts:
                outs.append(self._out(self.deliverer.suppressed(note, "no address to answer on")))
                continue
            outs += self.engine.outputs(note, await self.deliverer.deliver(note))
        return outs

    async def _directive(self, e: CaseEvent) -> list[Outgoing]:
        outs: list[Outgoing] = []
        reminder = e.type == CaseEventType.REMINDER_DUE
        for r in e.recipients:
            note = self.composer.for_directive(
                source_id=e.event_id,
                case_id=e.case_id,
                recipient=r,
                text=e.text or str(e.data.get("directive", "")),
                deadline=e.deadline,
                reminder=reminder,
                issuer=DirectiveIssuer.read(e.data.get("issued_by")),
            )
            outs += self.engine.outputs(note, await self.deliverer.deliver(note))
        return outs

    async def _reassigned(self, e: CaseEvent) -> list[Outgoing]:
        """A new assignee (or a reopened case): a new cycle of the chain, from level 0."""
        chain = sorted(e.escalation, key=lambda lvl: lvl.level) or (
            [
                EscalationLevel(
                    level=0,
                    role=e.recipients[0].role,
                    recipients=e.recipients,
                    timeout_s=self.default_timeout_s,
                )
            ]
            if e.recipients
            else []
        )
        if not chain or not chain[0].recipients:
            return []
        now = self.clock.now()
        old = await self.repo.get_alert(e.case_id)
        cycle = (old.cycle + 1) if old else 0
        key = f"cyc:{e.case_id}:{e.event_id}"
        if not await self.repo.claim(key, now, cycle=cycle):
            stored = await self.repo.get_claim(key)
            cycle = int(stored["cycle"]) if stored else cycle
        if old is not None and old.cycle > cycle:
            return []  # a later reassignment already replaced this one
        state = AlertState(
            case_id=e.case_id,
            cycle=cycle,
            source_id=e.event_id,
            source_topic=self.topics.case_events,
            priority=e.priority or (old.priority if old else Priority.P2),
            category=old.category if old else Category.OTHER,
            location=old.location if old else None,
            locality=old.locality if old else None,
            unit=chain[0].recipients[0].unit_id,
            summary=(old.summary if old else "") or (e.text or ""),
            reporter=old.reporter
            if old
            else (e.reporters[0] if e.reporters else Reporter(channel=Channel.DESK)),
            received_at=old.received_at if old else e.at,
            chain=chain,
            informed=[],
            status=AlertStatus.ALERTING,
            level=0,
            next_due_at=now + timedelta(seconds=chain[0].timeout_s),
            created_at=now,
            level_sent_at=now,
        )
        if old is None or old.cycle < cycle:
            await self.repo.replace_alert(state, now)
        else:
            state = old
        if state.source_id != e.event_id:
            return []
        result = await self.engine.send_level(state, 0, step="L0")
        if not result.reached:
            await self.repo.update_alert(e.case_id, now, next_due_at=now)
            self.engine.wake()
        return result.outgoing


def on_chain(state: AlertState) -> list[Recipient]:
    """Everybody on this alert's escalation chain, at every level (not the informed: told, not
    asked to act)."""
    return state.recipients_up_to(max((lvl.level for lvl in state.chain), default=-1))


def chain_sender(state: AlertState, sender: Reporter) -> Recipient | None:
    """The person on the chain whose contact the reply came from (channel + address or phone)."""
    addresses = {a for a in (sender.address, sender.phone) if a}
    wanted = {comparable(a) for a in addresses} - {""}
    for r in on_chain(state):
        for c in r.contacts:
            if c.channel == sender.channel.value and comparable(c.address) in wanted:
                return r
    # An SMS or Zalo reply may come from the phone number behind another contact.
    for r in on_chain(state):
        if any(is_phone(c.address) and comparable(c.address) in wanted for c in r.contacts):
            return r
    return None


async def all_of(steps: Sequence[Awaitable[list[Outgoing]]]) -> list[Outgoing]:
    """Run the steps concurrently; their outputs in the steps' order. A failure is raised
    only once every step has finished, so none is left running behind the retry."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [out for result in results if not isinstance(result, BaseException) for out in result]
