"""From normalised events to acknowledged Kafka records: flood control, dedup, publish.

The order matters: flood control first (a web or desk client over its rate costs no database
write), then the claim (never publish what we cannot deduplicate: fail closed), then the
publish, and only a broker acknowledgement makes the request succeed. Nothing is ever answered
2xx without being on the topic: a provider item over its sender's rate is published too,
flagged `flood_limited` so that downstream can collapse it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from hotline.contracts.events import InboundEvent, encode
from hotline.kafka import Outgoing, Publisher, PublishError
from hotline.logging import get_logger
from hotline_ingest.breaker import Breaker
from hotline_ingest.dedup import Decision, DedupLedger, DedupUnavailable, Reservation, dedup_key
from hotline_ingest.metrics import (
    ACCEPTED,
    DUPLICATES,
    FLOOD_LIMITED,
    PUBLISH_SECONDS,
    REJECTED,
    Rejection,
)
from hotline_ingest.ratelimit import TokenBucketLimiter

log = get_logger(__name__)

NEW, RETRY = Decision.NEW, Decision.RETRY


class FloodPolicy(Enum):
    """What to do with an item from a sender over their rate.

    FLAG (provider webhooks): publish it like any other, with `flood_limited: true`, and answer
    2xx after the broker's ack. Not a 429/503: Twilio does not retry an inbound SMS or a call
    callback (unless retries are configured on the URL), Viber gives up after an hour, so a
    flooder still over its rate then loses the message; Meta may disable a webhook that keeps
    failing; and a WhatsApp delivery carries other citizens' messages too. Nothing a citizen
    sends may be lost, so a flood costs a claim and a record per item, and downstream can
    collapse the flagged ones.
    REJECT (web form, desk): answer 429 with Retry-After (a person can wait and resend).
    """

    FLAG = "flag"
    REJECT = "reject"


def flag_flood_limited(event: InboundEvent) -> InboundEvent:
    """The same event (id, fields) with `flood_limited: true`."""
    return event.model_copy(update={"flood_limited": True})


class Unavailable(Exception):
    """Answer 503 with Retry-After: the provider must retry later."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(detail)
        self.dependency = dependency


class RateLimited(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many requests")
        self.retry_after_s = retry_after_s


@dataclass
class IntakeResult:
    accepted: list[str] = field(default_factory=list)  # event ids published now
    duplicates: list[str | None] = field(default_factory=list)  # event ids published before
    flood_limited: int = 0  # of `accepted`: published flagged, their sender over its rate


class Intake:
    def __init__(
        self,
        publisher: Publisher | None,
        ledger: DedupLedger,
        topic: str,
        sender_limiter: TokenBucketLimiter,
        breaker_open_s: float = 1.0,
    ) -> None:
        self.publisher = publisher
        self.ledger = ledger
        self.topic = topic
        self.sender_limiter = sender_limiter
        self.kafka_breaker = Breaker(breaker_open_s)
        self.mongo_breaker = Breaker(breaker_open_s)

    async def submit(
        self, channel: str, events: Sequence[InboundEvent], flood: FloodPolicy
    ) -> IntakeResult:
        """Publish each event exactly once; raises Unavailable (503) or RateLimited (429)."""
        result = IntakeResult()
        admitted: list[tuple[str, InboundEvent]] = []
        seen: set[str] = set()
        for event in events:
            key = dedup_key(channel, event.provider_message_id)
            if key in seen:  # the same message twice in one batch
                DUPLICATES.labels(channel).inc()
                result.duplicates.append(None)
                continue
            seen.add(key)
            wait = self.sender_limiter.try_acquire(event.key)
            if wait > 0:
                if flood is FloodPolicy.REJECT:
                    REJECTED.labels(channel, Rejection.RATE_LIMITED.value).inc()
                    raise RateLimited(wait)
                # Published like any other, flagged (FloodPolicy says why not refused); counted
                # in `flood_limited` and `accepted` once the broker acknowledged it.
                event = flag_flood_limited(event)
            admitted.append((key, event))
        if not admitted:
            return result

        # While a dependency is known to be down, answer at once: a retry that waits for the
        # deadline (and claims on the way, while the broker is down) only builds a backlog.
        kafka_probe = self.kafka_breaker.enter()
        if kafka_probe is None:
            raise Unavailable("kafka", "the broker failed moments ago; retry later")
        mongo_probe = self.mongo_breaker.enter()
        if mongo_probe is None:
            self.kafka_breaker.leave(kafka_probe)
            raise Unavailable("mongodb", "the dedup store failed moments ago; retry later")
        try:
            return await self._claim_and_publish(channel, admitted, result)
        finally:
            self.kafka_breaker.leave(kafka_probe)
            self.mongo_breaker.leave(mongo_probe)

    async def _claim_and_publish(
        self, channel: str, admitted: list[tuple[str, InboundEvent]], result: IntakeResult
    ) -> IntakeResult:
        outcomes: list[Reservation | BaseException]
        if len(admitted) == 1:  # the common case: no task and gather for a single delivery
            key, event = admitted[0]
            try:
                outcomes = [await self.ledger.reserve(key, event.event_id, event.received_at)]
            except DedupUnavailable as exc:
                outcomes = [exc]
        else:
            outcomes = await asyncio.gather(
                *(self.ledger.reserve(key, ev.event_id, ev.received_at) for key, ev in admitted),
                return_exceptions=True,
            )
        reservations: list[tuple[Reservation, InboundEvent]] = []
        failure: BaseException | None = None
        for (_, event), outcome in zip(admitted, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failure = failure or outcome
            else:
                reservations.append((outcome, event))
        if failure is None:
            self.mongo_breaker.succeeded()
        else:
            if isinstance(failure, DedupUnavailable):
                self.mongo_breaker.failed()
            # Fail closed: without a dedup answer nothing is published. Claims won meanwhile
            # were never handed to the broker, so they are given back for the retry; claims
            # of earlier failed attempts stay as they are (their record may still land).
            await self.ledger.abandon([r.key for r, _ in reservations if r.decision is NEW])
            self.ledger.forget([r.key for r, _ in reservations if r.decision is RETRY])
            if isinstance(failure, DedupUnavailable):
                raise Unavailable("mongodb", str(failure)) from failure
            raise failure

        to_publish: dict[str, InboundEvent] = {}
        marked: set[str] = set()  # claims already marked failed by an earlier attempt
        in_flight = False
        for reservation, event in reservations:
            if reservation.decision is Decision.DUPLICATE:
                DUPLICATES.labels(channel).inc()
                result.duplicates.append(reservation.event_id)
            elif reservation.decision is Decision.IN_FLIGHT:
                in_flight = True
            elif reservation.decision is Decision.RETRY:
                if reservation.failed_before:
                    marked.add(reservation.key)
                # Same event id (and arrival time) as the attempt that may still reach the
                # broker, so consumers see one event even if both records land.
                to_publish[reservation.key] = event.model_copy(
                    update={
                        "event_id": reservation.event_id or event.event_id,
                        "received_at": reservation.received_at or event.received_at,
                    }
                )
            else:
                to_publish[reservation.key] = event

        if to_publish:
            await self._publish(channel, to_publish, marked)
            result.accepted.extend(ev.event_id for ev in to_publish.values())
            result.flood_limited += sum(ev.flood_limited for ev in to_publish.values())
        if in_flight:
            raise Unavailable("in_flight", "the same delivery is being processed; retry later")
        return result

    async def _publish(
        self, channel: str, events: dict[str, InboundEvent], marked: set[str]
    ) -> None:
        records = [Outgoing(self.topic, encode(ev), key=ev.key) for ev in events.values()]
        started = time.perf_counter()
        try:
            if self.publisher is None:  # not started yet: the same answer as a broker outage
                raise PublishError("producer not started")
            await self.publisher.publish_many(records)
        except PublishError as exc:
            self.kafka_breaker.failed()
            await self.ledger.failed(list(events), already_marked=marked)
            raise Unavailable("kafka", str(exc)) from exc
        except BaseException:
            # Cancelled (client gone, shutdown) while the record may be on its way: treat it as
            # a failed attempt, recorded in the background because we are being cancelled.
            task = asyncio.ensure_future(self.ledger.failed(list(events), already_marked=marked))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
            raise
        self.kafka_breaker.succeeded()
        PUBLISH_SECONDS.observe(time.perf_counter() - started)
        self.ledger.succeeded({key: ev.event_id for key, ev in events.items()})
        for event in events.values():
            ACCEPTED.labels(channel, event.kind.value).inc()
            if event.flood_limited:
                FLOOD_LIMITED.labels(channel).inc()
            # Debug, not info: the topic itself is the record of what was accepted, and a
            # masked JSON line per event costs ~4% of the request at full rate.
            log.debug(
                "accepted",
                extra={"event_id": event.event_id, "channel": channel, "kind": event.kind.value},
            )
