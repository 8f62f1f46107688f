"""Call facts from our PBX adapters (Asterisk ARI/AMI, FreeSWITCH event socket), PROVIDERS.md 6.

The adapter turns the PBX's channel events into one JSON fact per call outcome and signs it
with `hotline.signatures.pbx_signature`. It keeps the PBX's own time format (Asterisk ISO-8601
in `timestamp`, FreeSWITCH `Event-Date-Timestamp` epoch microseconds in `event_date_timestamp`),
so the unit conversion happens once, here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hotline.contracts.events import CallInfo, Sender
from hotline.contracts.labels import Channel, InboundKind
from hotline_ingest.normalize import (
    EventContext,
    Parsed,
    clean_short,
    clean_url,
    from_epoch,
    from_iso8601,
    require_id,
    size_of,
    to_e164,
)
from hotline_ingest.providers import load_json

KINDS = {
    "answered": InboundKind.CALL_ANSWERED,
    "missed": InboundKind.CALL_MISSED,
    "voicemail": InboundKind.VOICEMAIL,
}


class PbxCallFact(BaseModel):
    """One call outcome reported by a PBX adapter."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "pbx": "asterisk",
                    "call_id": "1718000000.42",
                    "outcome": "missed",
                    "caller": "0912345678",
                    "called": "02343822113",
                    "timestamp": "2024-06-10T13:33:20.123+0700",
                    "hangup_cause": "19",
                },
                {
                    "pbx": "freeswitch",
                    "call_id": "4f6a2c1e-8a9b-4c1d-9e2f-0a1b2c3d4e5f",
                    "outcome": "voicemail",
                    "caller": "+84912345678",
                    "event_date_timestamp": 1718000000123456,
                    "duration_s": 37,
                    "recording_url": "https://pbx.example.vn/rec/4f6a.wav",
                    "transcript": "Nhà tôi bị mất trộm xe máy, số nhà 12 Lê Lợi",
                },
            ]
        },
    )

    pbx: Literal["asterisk", "freeswitch"]
    call_id: str = Field(
        min_length=1,
        max_length=128,
        description="Asterisk Linkedid/Uniqueid or FreeSWITCH Unique-ID: with the outcome, "
        "the deduplication key",
    )
    outcome: Literal["answered", "missed", "voicemail"]
    caller: str | None = Field(default=None, max_length=64, description="CallerIDNum")
    caller_name: str | None = Field(default=None, max_length=256)
    called: str | None = Field(default=None, max_length=64, description="the hotline number")
    timestamp: str | None = Field(default=None, description="Asterisk: ISO-8601")
    event_date_timestamp: int | str | None = Field(
        default=None, description="FreeSWITCH Event-Date-Timestamp: epoch microseconds"
    )
    duration_s: int | None = Field(default=None, ge=0)
    hangup_cause: str | None = Field(default=None, max_length=64)
    agent: str | None = Field(default=None, max_length=128, description="operator extension")
    recording_url: str | None = Field(default=None, max_length=2048)
    transcript: str | None = None
    language: str | None = Field(default=None, max_length=16)


def parse(body: bytes, ctx: EventContext) -> Parsed:
    """A verified PBX fact → one call event."""
    fact = load_json(PbxCallFact, body)
    call_id = require_id(fact.call_id, ("call_id",))
    if fact.pbx == "freeswitch":
        occurred = from_epoch(fact.event_date_timestamp, 1e-6) or from_iso8601(fact.timestamp)
    else:
        occurred = from_iso8601(fact.timestamp) or from_epoch(fact.event_date_timestamp, 1e-6)
    phone = to_e164(fact.caller)
    return Parsed(
        events=[
            ctx.event(
                channel=Channel.VOICE,
                kind=KINDS[fact.outcome],
                provider=fact.pbx,
                provider_message_id=f"{fact.pbx}:{call_id}:{fact.outcome}",
                provider_ids={"call_id": call_id, "called": fact.called},
                sender=Sender(
                    phone=phone,
                    user_id=None if phone else clean_short(fact.caller, 64),
                    display_name=clean_short(fact.caller_name),
                ),
                text=fact.transcript,
                call=CallInfo(
                    status=fact.outcome,
                    duration_s=size_of(fact.duration_s),
                    hangup_cause=clean_short(fact.hangup_cause, 64),
                    recording_url=clean_url(fact.recording_url),
                    agent=clean_short(fact.agent, 128),
                ),
                language_hint=clean_short(fact.language, 16),
                occurred_at=occurred,
            )
        ]
    )
