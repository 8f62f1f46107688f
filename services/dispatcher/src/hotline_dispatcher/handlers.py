"""Kafka handlers: triaged events, case events and delivery outcomes.

The consume → process → produce → commit loop is `hotline.runner.Runner`; this module only
supplies the processing steps. `BatchRunner` adds one thing: before the runner walks a poll's
records one by one, it hands all of them to `Dispatcher.dispatch_many` at once, so a burst costs
a handful of database round trips instead of several per event. The per-record handler then
returns the precomputed outputs. If the batch step fails (the database is down), nothing is
kept and the runner's own per-record path does the work, with its transient-error retries and
dead-lettering — the batch step is an optimisation, never the only path.
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


def delivery_handler(service: CaseService) -> Handler[DeliveryOutcome]:
    async def handle(msg: Message[DeliveryOutcome]) -> Sequence[Outgoing]:
        await service.record_delivery(msg.value)
        return []

    return handle
