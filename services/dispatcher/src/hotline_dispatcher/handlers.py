"""Kafka handlers: triaged events, case events and delivery outcomes.

The consume → process → produce → commit loop is `hotline.runner.Runner`; this module only
supplies the processing steps. `BatchRunner` adds one thing: before the runner walks a poll's
records one by one, it hands all of them to `Dispatcher.dispatch_many` at once, so a burst costs
a handful of database round trips instead of several per event. The per-record handler then
returns the precomputed outputs. If the batch step fails (the database is down), nothing is
kept and the runner's own per-record path does the work, with its transient-error retries and
dead-lettering — the batch step is an optimisation, never the only path.

`DeliveryBatchRunner` does the same for delivery outcomes: a poll's timeline entries are one
insert instead of one per outcome (the notifier sends one outcome or more per message, and
FerretDB spends most of a small insert on the command itself).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from hotline.contracts.events import CaseEvent, DeliveryOutcome, TriagedEvent
from hotline.kafka import Outgoing
from hotline.logging import get_logger
from hotline.runner import Handler, Message, Runner
from hotline_dispatcher.flows import Dispatcher
from hotline_dispatcher.ops import CaseService

log = get_logger(__name__)


class TriagedHandler:
    """Handler for `hotline.triaged.v1`, with a cache of outputs computed by the batch step."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.prepared: dict[str, list[Outgoing]] = {}

    async def __call__(self, msg: Message[TriagedEvent]) -> Sequence[Outgoing]:
        outs = self.prepared.pop(msg.value.event_id, None)
        if outs is not None:
            return outs
        return await self.dispatcher.dispatch_many([msg.value])

    async def prepare(self, events: list[TriagedEvent]) -> None:
        """Decide a whole batch at once and keep each event's outputs for the runner."""
        self.prepared.clear()
        self.prepared = await self.dispatcher.decide(events)


class BatchRunner(Runner[TriagedEvent]):
    """The shared runner, plus the batch step described in the module docstring."""

    triaged: TriagedHandler

    async def process_batches(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        events: list[TriagedEvent] = []
        for records in batches.values():
            for record in records:
                if record.value is None:
                    continue
                try:
                    events.append(TriagedEvent.model_validate_json(record.value))
                except ValidationError:
                    continue  # the runner dead-letters it with the reason
        if len(events) > 1:
            try:
                await self.triaged.prepare(events)
            except Exception as exc:
                self.triaged.prepared.clear()
                log.warning(
                    "batch step failed; processing one by one", extra={"error": repr(exc)[:300]}
                )
        try:
            await super().process_batches(batches)
        finally:
            self.triaged.prepared.clear()


def case_event_handler(service: CaseService) -> Handler[CaseEvent]:
    async def handle(msg: Message[CaseEvent]) -> Sequence[Outgoing]:
        await service.apply_case_event(msg.value)
        return []

    return handle


class DeliveryHandler:
    """Handler for `hotline.deliveries.v1` that skips outcomes the batch step recorded."""

    def __init__(self, service: CaseService) -> None:
        self.service = service
        self.recorded: set[tuple[str, str, int]] = set()

    async def __call__(self, msg: Message[DeliveryOutcome]) -> Sequence[Outgoing]:
        o = msg.value
        if (o.delivery_id, o.status.value, o.attempts) not in self.recorded:
            await self.service.record_delivery(o)
        return []

    async def prepare(self, outcomes: list[DeliveryOutcome]) -> None:
        self.recorded.clear()
        await self.service.record_deliveries(outcomes)
        self.recorded = {(o.delivery_id, o.status.value, o.attempts) for o in outcomes}


class DeliveryBatchRunner(Runner[DeliveryOutcome]):
    """The shared runner, plus one timeline insert per poll (see the module docstring)."""

    deliveries: DeliveryHandler

    async def process_batches(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        outcomes: list[DeliveryOutcome] = []
        for records in batches.values():
            for record in records:
                if record.value is None:
                    continue
                try:
                    outcomes.append(DeliveryOutcome.model_validate_json(record.value))
                except ValidationError:
                    continue  # the runner dead-letters it with the reason
        if len(outcomes) > 1:
            try:
                await self.deliveries.prepare(outcomes)
            except Exception as exc:
                self.deliveries.recorded.clear()
                log.warning(
                    "batch step failed; processing one by one", extra={"error": repr(exc)[:300]}
                )
        try:
            await super().process_batches(batches)
        finally:
            self.deliveries.recorded.clear()
