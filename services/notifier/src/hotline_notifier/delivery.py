"""The delivery engine: reach one recipient once, over their channels in preference order.

For each (step, recipient, channel) there is one idempotency key, the `delivery_id`
(`stable_id(source, step, recipient, channel)`), claimed in MongoDB before the provider is
called. A redelivered decision or a restarted notifier finds the claim and republishes the
stored outcome instead of sending again. A channel that fails transiently (5xx, timeouts, 429
beyond the allowed wait) is retried with exponential backoff and jitter, honouring
`Retry-After`; then its claim is released (so a later retry may use it) and the next channel is
tried; any other 4xx fails the channel at once. When every channel failed the recipient is
DEAD: the caller dead-letters it and escalates at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import datetime

from hotline.clock import Clock, ensure_utc
from hotline.contracts.events import Contact, DeliveryOutcome, DeliveryPurpose, DeliveryStatus
from hotline.ids import stable_id
from hotline.logging import get_logger
from hotline.privacy import mask_address, mask_text

from .channels import Channel, ChannelRegistry, OutboundMessage, SendError, SendResult
from .metrics import CITIZEN_REPLIES, END_TO_END, NOTIFICATIONS, PROVIDER_SECONDS
from .phones import is_phone
from .provider_templates import MessageKind
from .ratelimit import RateLimited, RateLimiter
from .repository import Repository

log = get_logger(__name__)

PHONE_CHANNELS = frozenset({"sms", "zalo", "whatsapp", "viber"})
"""Channels whose address may be a phone number (Viber's and Zalo's are ids unless given as
numbers; `is_phone` decides)."""

CITIZEN_KINDS = {
    DeliveryPurpose.CITIZEN_RECEIPT: "receipt",
    DeliveryPurpose.CITIZEN_COURTESY: "courtesy",
    DeliveryPurpose.CITIZEN_CLOSURE: "closure",
}


@dataclass
class RetryPolicy:
    attempts: int = 3
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 30.0
    lease_s: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter in [0.5, 1.5) of the nominal delay."""
        nominal = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** (attempt - 1))
        return float(nominal * (0.5 + random.random()))


@dataclass
class FirstAlert:
    """Marks the first alert of a case accepted by a provider (end-to-end latency, once)."""

    received_at: datetime
    priority: str
    taken: bool = False

    def take(self) -> bool:
        if self.taken:
            return False
        self.taken = True
        return True


@dataclass
class Notification:
    """One message to one person at one step of a flow."""

    source_id: str
    step: str
    purpose: DeliveryPurpose
    recipient_id: str
    recipient_role: str
    contacts: list[Contact]
    subject: str
    text: str
    kind: MessageKind
    """The templates.yaml entry it was rendered from, and its provider template."""
    case_id: str | None = None
    event_id: str | None = None
    level: int | None = None
    language: str = "vi"
    template_params: dict[str, str] = field(default_factory=dict)
    within_session: bool = False
    received_at: datetime | None = None
    first_alert: FirstAlert | None = None

    def message(self, delivery_id: str) -> OutboundMessage:
        """What a channel sends for this notification, under one delivery's idempotency key."""
        return OutboundMessage(
            subject=self.subject,
            text=self.text,
            delivery_id=delivery_id,
            tracking_id=self.case_id or self.source_id,
            purpose=self.purpose.value,
            kind=self.kind,
            language=self.language,
            template_params=self.template_params,
            within_session=self.within_session,
            phone=phone_of(self.contacts),
        )


def phone_of(contacts: list[Contact]) -> str | None:
    """The first phone number among a person's contacts (an SMS contact, or a messaging
    contact given as a number), or None."""
    for contact in contacts:
        if contact.channel in PHONE_CHANNELS and is_phone(contact.address):
            return contact.address
    return None


@dataclass
class Report:
    """What happened to one notification."""

    outcomes: list[DeliveryOutcome]
    sent: bool = False
    dead: bool = False
    replayed: bool = False
    in_flight: bool = False


@dataclass
class _Target:
    contact: Contact
    channel: Channel
    key: str
    delivery_id: str
    label: str


class Deliverer:
    def __init__(
        self,
        repo: Repository,
        channels: ChannelRegistry,
        limiter: RateLimiter,
        clock: Clock,
        policy: RetryPolicy,
        max_concurrent_sends: int = 32,
    ) -> None:
        self.repo = repo
        self.channels = channels
        self.limiter = limiter
        self.clock = clock
        self.policy = policy
        # Provider requests in flight are bounded (the rest wait here, cheaply): a burst of
        # alerts does not open hundreds of connections to one provider.
        self._sending = asyncio.Semaphore(max_concurrent_sends)
        # Crash-free recovery from a database outage in this process: results sent but not yet
        # recorded, and claims whose insert errored (it may have landed) but were never sent.
        self._unsaved: dict[str, DeliveryOutcome] = {}
        self._mine: set[str] = set()

    def _targets(self, n: Notification) -> list[_Target]:
        targets: list[_Target] = []
        seen: dict[str, int] = {}
        for contact in n.contacts:
            for index, channel in enumerate(self.channels.for_contact(contact.channel)):
                label = contact.channel if index == 0 else f"{contact.channel}/{channel.provider}"
                repeat = seen.get(label, 0)
                seen[label] = repeat + 1
                if repeat:
                    label = f"{label}#{repeat}"
                delivery_id = stable_id(n.source_id, n.step, n.recipient_id, label)
                targets.append(_Target(contact, channel, f"dlv:{delivery_id}", delivery_id, label))
        return targets

    def _outcome(
        self,
        n: Notification,
        delivery_id: str,
        channel: str,
        address: str,
        status: DeliveryStatus,
        attempts: int,
        *,
        provider_message_id: str | None = None,
        error: str | None = None,
        first_alert: bool = False,
    ) -> DeliveryOutcome:
        return DeliveryOutcome(
            delivery_id=delivery_id,
            case_id=n.case_id,
            event_id=n.event_id,
            purpose=n.purpose,
            level=n.level,
            recipient_id=n.recipient_id,
            recipient_role=n.recipient_role,
            channel=channel,
            address_masked=mask_address(address) if address else "",
            status=status,
            attempts=attempts,
            provider_message_id=provider_message_id,
            error=mask_text(error)[:500] if error else None,
            first_alert=first_alert,
            received_at=n.received_at,
            at=self.clock.now(),
        )

    def suppressed(self, n: Notification, reason: str, step: str | None = None) -> DeliveryOutcome:
        """An outcome for a notification not sent on purpose (quiet hours, no address...)."""
        contact = n.contacts[0] if n.contacts else None
        delivery_id = stable_id(n.source_id, step or n.step, n.recipient_id, "suppressed")
        NOTIFICATIONS.labels(
            contact.channel if contact else "none", n.purpose.value, "suppressed"
        ).inc()
        return self._outcome(
            n,
            delivery_id,
            contact.channel if contact else "none",
            contact.address if contact else "",
            DeliveryStatus.SUPPRESSED,
            0,
            error=reason,
        )

    async def deliver(self, n: Notification) -> Report:
        """Reach the recipient on the first channel that works; exactly once per target.

        Fresh path: one claim insert, the provider call, one result insert (FerretDB makes
        inserts of unique keys atomic and cheap, grouped; updates are neither). A repeat finds the
        claim, reads the stored result and replays it.
        """
        outcomes: list[DeliveryOutcome] = []
        pending: list[tuple[_Target, DeliveryOutcome]] = []  # transient failures
        now = self.clock.now()
        for target in self._targets(n):
            if not await self._claim(target, now):
                settled, stored = await self._settled(target, now)
                if settled == "sent" and stored is not None:
                    return Report([*outcomes, stored], sent=True, replayed=True)
                if settled == "failed" and stored is not None:
                    outcomes.append(stored)
                    continue
                if settled == "in_flight":
                    # Not the next channel either: that could reach the person twice.
                    return Report(outcomes, in_flight=True)
            outcome = await self._attempt(n, target)
            outcomes.append(outcome)
            self._mine.discard(target.key)
            if outcome.status == DeliveryStatus.SENT:
                # Channels that failed on the way keep their failure, so that a redelivery
                # goes straight to the channel that worked instead of retrying them.
                for failed_target, failed in [*pending, (target, outcome)]:
                    await self._store_result(failed_target, failed, now)
                return Report(outcomes, sent=True)
            if outcome.error and outcome.error.startswith("permanent"):
                await self._store_result(target, outcome, now)
            else:
                pending.append((target, outcome))
        # Nobody was reached: give the transiently failed channels back, so a retry may use
        # them (a redelivered decision, the next escalation step).
        for failed_target, _ in pending:
            await self.repo.release(failed_target.key)
        contact = n.contacts[0] if n.contacts else None
        dead = self._outcome(
            n,
            stable_id(n.source_id, n.step, n.recipient_id, "dead"),
            contact.channel if contact else "none",
            contact.address if contact else "",
            DeliveryStatus.DEAD,
            sum(o.attempts for o in outcomes),
            error="every channel failed"
            + (": " + "; ".join(o.error or "" for o in outcomes) if outcomes else ": no contact"),
        )
        NOTIFICATIONS.labels(dead.channel, n.purpose.value, "dead").inc()
        outcomes.append(dead)
        return Report(outcomes, dead=True)

    async def _claim(self, target: _Target, now: datetime) -> bool:
        try:
            return await self.repo.claim_batched(target.key, now)
        except Exception:
            self._mine.add(target.key)  # an insert whose answer was lost may have landed
            raise

    async def _store_result(self, target: _Target, outcome: DeliveryOutcome, now: datetime) -> None:
        """Persist a result; if the database is away, keep it here until the retry saves it."""
        self._unsaved[target.key] = outcome
        await self.repo.claim_batched(
            f"res:{target.delivery_id}", now, outcome=outcome.model_dump(mode="json")
        )
        del self._unsaved[target.key]

    async def _settled(self, target: _Target, now: datetime) -> tuple[str, DeliveryOutcome | None]:
        """What became of a target somebody claimed: sent, failed, in_flight, or free (ours)."""
        unsaved = self._unsaved.get(target.key)
        if unsaved is not None:  # we sent it, the database was away when we recorded it
            await self._store_result(target, unsaved, now)
            return ("sent" if unsaved.status == DeliveryStatus.SENT else "failed"), unsaved
        result = await self.repo.get_claim(f"res:{target.delivery_id}")
        if result is not None:
            outcome = DeliveryOutcome.model_validate(result["outcome"])
            return ("sent" if outcome.status == DeliveryStatus.SENT else "failed"), outcome
        claim = await self.repo.get_claim(target.key)
        if claim is None:  # released meanwhile (a transient failure elsewhere)
            return ("free" if await self.repo.claim_batched(target.key, now) else "in_flight"), None
        if target.key in self._mine:  # our own claim whose insert reported an error
            return "free", None
        if (now - ensure_utc(claim["at"])).total_seconds() < self.policy.lease_s:
            return "in_flight", None
        # The owner died mid-send (it would have stored a result): take the delivery over.
        if await self.repo.take_over(target.key, claim["at"], now):
            log.warning("took over a stale delivery", extra={"delivery_id": target.delivery_id})
            return "free", None
        return "in_flight", None

    async def _attempt(self, n: Notification, target: _Target) -> DeliveryOutcome:
        channel, address = target.channel, target.contact.address
        provider = channel.provider_for(address)
        message = n.message(target.delivery_id)
        attempts = 0
        error: SendError | None = None
        refused: SendError | None = None  # what made us send to the redirect address
        result: SendResult | None = None
        while attempts < self.policy.attempts:
            attempts += 1
            try:
                await self.limiter.acquire(provider, address)
            except RateLimited as exc:
                error = SendError(str(exc), transient=True)
                break
            started = time.perf_counter()
            try:
                async with self._sending:
                    result = await channel.send(address, message)
                break
            except SendError as exc:
                error = exc
            finally:
                PROVIDER_SECONDS.labels(channel.name).observe(time.perf_counter() - started)
            if error.redirect is not None and refused is None:
                # The same person at another address on this channel (Zalo -213 → ZNS to the
                # phone): one more send there, not counted against the attempts at the first.
                refused, address = error, error.redirect
                provider = channel.provider_for(address)
                attempts -= 1
                continue
            if not error.transient or attempts >= self.policy.attempts:
                break
            if error.retry_after is not None:
                if error.retry_after > self.policy.max_retry_after_s:
                    break
                await asyncio.sleep(error.retry_after)
            else:
                await asyncio.sleep(self.policy.backoff(attempts))
        if result is not None:
            first = bool(n.first_alert and n.first_alert.take())
            NOTIFICATIONS.labels(channel.name, n.purpose.value, "sent").inc()
            if n.purpose in CITIZEN_KINDS:
                CITIZEN_REPLIES.labels(CITIZEN_KINDS[n.purpose], channel.name).inc()
            if first and n.first_alert is not None:
                END_TO_END.labels(n.first_alert.priority).observe(
                    max(0.0, (self.clock.now() - n.first_alert.received_at).total_seconds())
                )
            return self._outcome(
                n,
                target.delivery_id,
                channel.name,
                address,
                DeliveryStatus.SENT,
                attempts,
                provider_message_id=result.provider_message_id,
                first_alert=first,
            )
        assert error is not None
        if refused is not None and error is not refused:
            error.detail = f"{refused.detail}; then {error.detail}"
        NOTIFICATIONS.labels(channel.name, n.purpose.value, "failed").inc()
        kind = "transient" if error.transient else "permanent"
        log.warning(
            "channel failed, trying the next one",
            extra={
                "case_id": n.case_id,
                "delivery_id": target.delivery_id,
                "channel": target.label,
                "attempts": attempts,
                "error": error.detail[:300],
            },
        )
        return self._outcome(
            n,
            target.delivery_id,
            channel.name,
            target.contact.address,
            DeliveryStatus.FAILED,
            attempts,
            error=f"{kind}: {error.detail}",
        )
