"""The notifier's own records: the durable escalation timer of one alerted case."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hotline.clock import ensure_utc
from hotline.contracts.events import EscalationLevel, Recipient, Reporter
from hotline.contracts.labels import Category, District, Priority


class AlertStatus(StrEnum):
    DEFERRED = "deferred"  # quiet hours: level 0 not sent yet
    ALERTING = "alerting"  # level `level` sent, waiting for an acknowledgement
    ACKNOWLEDGED = "acknowledged"  # reminders until resolved
    EXHAUSTED = "exhausted"  # the whole chain timed out (the top level was repeated)
    RESOLVED = "resolved"  # nothing more to do


ACTIVE = (AlertStatus.DEFERRED, AlertStatus.ALERTING, AlertStatus.ACKNOWLEDGED)
UNACKNOWLEDGED = (AlertStatus.DEFERRED, AlertStatus.ALERTING, AlertStatus.EXHAUSTED)


class AlertState(BaseModel):
    """One alerted case (Mongo `notifier_alerts`, `_id` = case id); a new cycle per reassignment.

    `next_due_at` is the durable timer: the scheduler picks up every active alert whose time
    has come, whichever replica or process is running then.
    """

    model_config = ConfigDict(extra="ignore")

    case_id: str
    cycle: int = 0
    source_id: str = Field(description="decision or case-event id that started this cycle")
    source_topic: str = ""
    purpose: str = "alert"
    priority: Priority
    category: Category
    location: District | None = None
    locality: str | None = None
    unit: str | None = None
    summary: str = ""
    reporter: Reporter
    received_at: datetime
    chain: list[EscalationLevel]
    informed: list[Recipient] = Field(default_factory=list)
    status: AlertStatus
    level: int = Field(description="highest level alerted in this cycle; -1 before the first")
    next_due_at: datetime | None
    created_at: datetime
    level_sent_at: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str | None = None
    reminders: int = 0
    repeats: int = 0

    def to_doc(self) -> dict[str, Any]:
        doc = self.model_dump(mode="python")
        doc["_id"] = self.case_id
        plain: dict[str, Any] = _plain(doc)
        return plain

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> AlertState:
        state = cls.model_validate(doc)
        for name in ("received_at", "next_due_at", "created_at", "level_sent_at", "acked_at"):
            value = getattr(state, name)
            if value is not None:
                setattr(state, name, ensure_utc(value))
        return state

    def recipients_up_to(self, level: int) -> list[Recipient]:
        return [r for lvl in self.chain if lvl.level <= level for r in lvl.recipients]


def _plain(value: Any) -> Any:
    """Enums to their values (BSON stores plain strings); datetimes stay datetimes."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    return value
