"""Event contracts: one pydantic v2 model per topic value, JSON on the wire.

Every model here has an example in `contracts/examples/<model>.json`, checked by a test, and is
named by the topic registry (`contracts/topics.py`). Personal data (phone numbers, names, reply
addresses) travels inside events because the services need it to answer citizens; it never goes
into logs or metric labels unmasked (see `hotline.logging`).

Schema evolution: add optional fields only; a breaking change is a new topic version (`.v2`).
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hotline.contracts.labels import (
    Category,
    Channel,
    District,
    InboundKind,
    Language,
    Priority,
)

RAW_PAYLOAD_LIMIT = 16 * 1024
"""Bytes of the provider's raw payload kept on an inbound event for audit."""

TEXT_LIMIT = 16 * 1024
"""Characters of citizen text carried on an event; longer text is cut (and flagged)."""


class Contract(BaseModel):
    """Base of every event: strict about unknown shapes, tolerant of new optional fields."""

    model_config = ConfigDict(extra="ignore", frozen=False, populate_by_name=True)


# --------------------------------------------------------------------------- inbound


class Sender(Contract):
    """Who sent an inbound item. `phone` is E.164 when the channel gives a number."""

    phone: str | None = None
    user_id: str | None = None
    display_name: str | None = None

    @property
    def address(self) -> str | None:
        """Where to answer on the sender's own channel: the channel user id, else the phone."""
        return self.user_id or self.phone


class Attachment(Contract):
    """Metadata of a media item; the bytes themselves are never carried."""

    type: str
    url: str | None = None
    size: int | None = None
    name: str | None = None
    mime: str | None = None


class GeoPoint(Contract):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class CallInfo(Contract):
    """Facts about a phone call from Twilio Voice or a PBX adapter."""

    status: str | None = None
    duration_s: int | None = None
    hangup_cause: str | None = None
    recording_url: str | None = None
    agent: str | None = None


class InboundEvent(Contract):
    """One citizen message or call, verified and normalised by ingest (`hotline.inbound.v1`)."""

    schema_version: Literal[1] = 1
    event_id: str = Field(description="time-ordered UUIDv7, unique per delivery")
    channel: Channel
    kind: InboundKind
    provider: str = Field(description="e.g. zalo_oa, viber, whatsapp_cloud, twilio, asterisk")
    provider_message_id: str = Field(description="the provider's id of this delivery, as text")
    provider_ids: dict[str, str] = Field(default_factory=dict)
    sender: Sender
    text: str = ""
    text_truncated: bool = False
    attachments: list[Attachment] = Field(default_factory=list)
    location: GeoPoint | None = None
    place: str | None = Field(default=None, description="a place typed into a form")
    call: CallInfo | None = None
    language_hint: str | None = None
    logged_by: str | None = Field(default=None, description="call-taker who logged a summary")
    flood_limited: bool = Field(
        default=False,
        description="the sender was over its rate at ingest: kept and triaged, but the dispatcher "
        "opens no case for it below P1 (staff can still mark it as a report)",
    )
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    raw: str = Field(default="", description="provider payload for audit, size-capped")
    raw_truncated: bool = False

    @property
    def key(self) -> str:
        """Kafka key: channel + sender, so one citizen's messages stay in order."""
        return f"{self.channel.value}:{self.sender.address or self.provider_message_id}"


# --------------------------------------------------------------------------- triaged


class Triage(Contract):
    """The classifier's verdict (fields of ../shared/TRIAGE.md plus reasons)."""

    category: Category
    actionable: bool
    priority: Priority
    location: District | None = None
    locality: str | None = Field(
        default=None,
        max_length=200,
        description="the gazetteer place inside `location` that decided it (a commune, ward, "
        "landmark or street, as the gazetteer writes it); null when the text names only the "
        "district or no place. The dispatcher keeps reports naming two localities apart.",
    )
    language: Language
    confidence: float = Field(ge=0.0, le=1.0)
    reasons: list[str] = Field(default_factory=list)
    model_version: str
    triaged_at: AwareDatetime


class TriagedEvent(InboundEvent):
    """The inbound event plus its triage (`hotline.triaged.v1`); same event id."""

    triage: Triage


# --------------------------------------------------------------------------- dispatch


class Role(StrEnum):
    """Roles in the organisation, used for escalation and for what a recipient may see."""

    OFFICER = "officer"
    COMMANDER = "commander"
    CALL_TAKER = "call_taker"
    STAFF_LEADER = "staff_leader"
    DIRECTOR = "director"


class Contact(Contract):
    """One way to reach a person: an outbound channel and its address."""

    channel: Literal["sms", "zalo", "viber", "whatsapp", "telegram", "email", "webhook"]
    address: str


class Recipient(Contract):
    """A person the notifier may alert, with contacts in preference order."""

    person_id: str
    name: str
    rank: str | None = None
    role: Role
    unit_id: str
    contacts: list[Contact] = Field(default_factory=list)
    may_see_reporter: bool = False


class EscalationLevel(Contract):
    """One step of an escalation chain: alert these people, wait `timeout_s` for an ack."""

    level: int = Field(ge=0)
    role: Role
    recipients: list[Recipient]
    timeout_s: int = Field(gt=0)


class Reporter(Contract):
    """How to answer the citizen who reported (on the channel they wrote from)."""

    channel: Channel
    address: str | None = None
    phone: str | None = None
    display_name: str | None = None
    language: Language = Language.VI
    last_message_at: AwareDatetime | None = Field(
        default=None,
        description=(
            "when this citizen last wrote on `channel` about the case (case events only): "
            "WhatsApp allows free text within 24 h of it, a template otherwise"
        ),
    )


class DispatchAction(StrEnum):
    NEW_CASE = "new_case"  # opened a case, alert the chain
    MERGED = "merged"  # joined another citizen's open case: no new alert
    FOLLOWUP = "followup"  # the same citizen's follow-up on their open case: no new alert
    CALLBACK = "callback"  # missed call: a callback task for the Staff Office call-taker
    GREETING = "greeting"  # no case: logged for statistics, courtesy reply maybe
    ACKNOWLEDGEMENT = "acknowledgement"  # an officer replied "OK HUE-..." on their channel


class CitizenReply(StrEnum):
    NONE = "none"
    RECEIPT = "receipt"  # "we received your report, reference HUE-..."
    COURTESY = "courtesy"  # the Director's greeting reply, at most one per citizen per day


class DispatchDecision(Contract):
    """What the dispatcher decided for one triaged event (`hotline.dispatched.v1`)."""

    schema_version: Literal[1] = 1
    decision_id: str
    event_id: str
    action: DispatchAction
    case_id: str | None = None
    category: Category
    priority: Priority
    location: District | None = None
    locality: str | None = Field(
        default=None, max_length=200, description="the triage's locality (a place in `location`)"
    )
    language: Language = Language.VI
    responsible_unit: str | None = None
    informed_units: list[str] = Field(default_factory=list)
    assignee: Recipient | None = None
    escalation: list[EscalationLevel] = Field(default_factory=list)
    informed: list[Recipient] = Field(default_factory=list)
    alert: bool = False
    summary: str = ""
    reporter: Reporter
    citizen_reply: CitizenReply = CitizenReply.NONE
    reasons: list[str] = Field(default_factory=list)
    received_at: AwareDatetime
    triaged_at: AwareDatetime | None = None
    decided_at: AwareDatetime


# --------------------------------------------------------------------------- case events


class CaseEventType(StrEnum):
    OPENED = "opened"
    REPORT_ADDED = "report_added"
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    REASSIGNED = "reassigned"
    NOTE_ADDED = "note_added"
    DIRECTIVE_ADDED = "directive_added"
    DIRECTIVE_REPORTED = "directive_reported"
    REMINDER_DUE = "reminder_due"
    TRIAGE_CORRECTED = "triage_corrected"
    CALLBACK_DONE = "callback_done"


class Actor(Contract):
    """Who did something: a person (by id and role) or a service."""

    id: str
    role: str
    name: str | None = None


class DirectiveIssuer(StrEnum):
    """Whose directive it is: the Director's own, or passed on by the Staff Office for him."""

    DIRECTOR = "director"
    STAFF_OFFICE = "staff_office"

    @classmethod
    def of(cls, role: str) -> DirectiveIssuer:
        """The Director records his own; anyone else allowed to (staff, admin) acts for him."""
        return cls.DIRECTOR if role == "director" else cls.STAFF_OFFICE

    @classmethod
    def read(cls, value: object) -> DirectiveIssuer:
        """`issued_by` as found in an event or document; absent or unknown: the Staff Office."""
        return cls.DIRECTOR if value == cls.DIRECTOR.value else cls.STAFF_OFFICE


class CaseEvent(Contract):
    """A change to a case, published by whoever made it (`hotline.case-events.v1`).

    The dispatcher owns the case file and applies events other services publish (an
    acknowledgement through the notifier's link, for instance); the notifier reacts to them
    (stop escalating, notify a reassigned officer, send the closure notice).

    `data` of `directive_added` and `reminder_due` carries `directive_id` and `issued_by` (a
    `DirectiveIssuer`, read with `DirectiveIssuer.read`).
    """

    schema_version: Literal[1] = 1
    event_id: str
    case_id: str
    type: CaseEventType
    source: str = Field(description="service that published it: dispatcher, notifier, console")
    actor: Actor
    at: AwareDatetime
    case_state: str | None = None
    priority: Priority | None = None
    text: str | None = None
    deadline: AwareDatetime | None = None
    recipients: list[Recipient] = Field(default_factory=list)
    escalation: list[EscalationLevel] = Field(default_factory=list)
    reporters: list[Reporter] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- deliveries


class DeliveryPurpose(StrEnum):
    ALERT = "alert"
    ESCALATION = "escalation"
    REMINDER = "reminder"
    DIRECTIVE = "directive"
    INFORM = "inform"
    CALLBACK_TASK = "callback_task"
    CITIZEN_RECEIPT = "citizen_receipt"
    CITIZEN_COURTESY = "citizen_courtesy"
    CITIZEN_CLOSURE = "citizen_closure"


class DeliveryStatus(StrEnum):
    SENT = "sent"  # the provider accepted it
    FAILED = "failed"  # this channel failed; the next one is tried
    DEAD = "dead"  # every channel failed: dead-lettered and escalated at once
    SUPPRESSED = "suppressed"  # not sent on purpose (quiet hours, daily courtesy limit)


class DeliveryOutcome(Contract):
    """The outcome of one notification attempt sequence (`hotline.deliveries.v1`)."""

    schema_version: Literal[1] = 1
    delivery_id: str = Field(description="idempotency key: (alert step, recipient, channel)")
    case_id: str | None = None
    event_id: str | None = None
    purpose: DeliveryPurpose
    level: int | None = None
    recipient_id: str
    recipient_role: str
    channel: str
    address_masked: str
    status: DeliveryStatus
    attempts: int = Field(ge=0)
    provider_message_id: str | None = None
    error: str | None = None
    first_alert: bool = False
    received_at: AwareDatetime | None = Field(
        default=None, description="the report's received_at, for end-to-end latency"
    )
    at: AwareDatetime


# --------------------------------------------------------------------------- dead letters


class DeadLetterReason(StrEnum):
    """Bounded set of reasons (also a metric label)."""

    UNDECODABLE = "undecodable"  # not UTF-8 / not JSON
    INVALID = "invalid"  # JSON that fails the topic's schema
    HANDLER_ERROR = "handler_error"  # processing failed repeatedly
    UNDELIVERABLE = "undeliverable"  # notifier: every channel failed
    INJECTED = "injected"  # deliberately injected poison (tests, drills)


class DeadLetter(Contract):
    """A message that could not be processed, with why (`hotline.deadletter.v1`)."""

    schema_version: Literal[1] = 1
    dlq_id: str
    service: str
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    value: str = Field(description="the original value as text (base64 if not UTF-8), capped")
    value_encoding: Literal["utf-8", "base64"] = "utf-8"
    reason: DeadLetterReason
    detail: str
    attempts: int = 1
    failed_at: datetime


M = TypeVar("M", bound=BaseModel)


def encode(model: BaseModel) -> bytes:
    """Serialise an event for Kafka (JSON, UTF-8, no nulls stripped so readers see all fields)."""
    return model.__pydantic_serializer__.to_json(model)


def decode(model_cls: type[M], data: bytes | str) -> M:
    """Parse and validate an event; raises pydantic.ValidationError (a poison message)."""
    return model_cls.model_validate_json(data)


EXAMPLES = Path(__file__).parent / "examples"


def example(name: str) -> dict[str, Any]:
    """The JSON example of a model (`examples/<name>.json`), as a fresh dict to change."""
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return data
