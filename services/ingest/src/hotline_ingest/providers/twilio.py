"""Twilio webhooks: inbound SMS and Voice status/recording callbacks (PROVIDERS.md 5 and 6).

Both are form posts signed the same way (`hotline.signatures.verify_twilio`): the signature
covers every parameter received, so the parser takes the raw pairs, not a model.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from hotline.contracts.events import Attachment, CallInfo, Sender
from hotline.contracts.labels import Channel, InboundKind
from hotline.ids import stable_id
from hotline_ingest.normalize import (
    EventContext,
    Malformed,
    Parsed,
    attachment,
    clean_short,
    clean_url,
    from_rfc2822,
    require_id,
    size_of,
    to_e164,
)
from hotline_ingest.providers import one_message

PROVIDER = "twilio"
MAX_FIELDS = 500
MAX_MEDIA = 20

MISSED = frozenset({"busy", "no-answer", "failed", "canceled"})
IGNORED_CALL_STATUSES = frozenset({"queued", "initiated", "ringing", "in-progress"})

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """Decode `application/x-www-form-urlencoded` strictly (UTF-8), keeping empty values."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"body is not a UTF-8 form: {exc}"[:300]) from None


def _fields(pairs: list[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)  # a repeated name: the first value counts
    return fields


def _sender(raw: str | None) -> Sender:
    phone = to_e164(raw)
    # "anonymous", "+266696687" (Twilio's withheld caller id) and short codes are no phone.
    return Sender(phone=phone, user_id=None if phone else clean_short(raw, 64))


class TwilioSmsForm(BaseModel):
    """Twilio's inbound message parameters (any others are accepted and signed too)."""

    model_config = ConfigDict(extra="allow")

    MessageSid: str = Field(description="SM…: the deduplication key")
    AccountSid: str | None = None
    MessagingServiceSid: str | None = None
    From: str = Field(description="the citizen's number, E.164")
    To: str | None = None
    Body: str | None = None
    NumMedia: str | None = None
    NumSegments: str | None = None
    SmsStatus: str | None = None
    ApiVersion: str | None = None


class TwilioVoiceForm(BaseModel):
    """Twilio Voice status, `<Dial>` action, recording and transcription callback parameters."""

    model_config = ConfigDict(extra="allow")

    CallSid: str
    AccountSid: str | None = None
    From: str | None = None
    To: str | None = None
    CallStatus: str | None = Field(
        default=None,
        description="queued|ringing|in-progress|completed|busy|failed|no-answer|canceled",
    )
    Direction: str | None = None
    CallDuration: str | None = None
    Timestamp: str | None = Field(default=None, description="RFC 2822")
    SequenceNumber: str | None = None
    DialCallStatus: str | None = None
    RecordingUrl: str | None = None
    RecordingSid: str | None = None
    RecordingDuration: str | None = None
    RecordingStatus: str | None = None
    TranscriptionSid: str | None = None
    TranscriptionText: str | None = None
    TranscriptionStatus: str | None = None


def parse_sms(pairs: list[tuple[str, str]], ctx: EventContext) -> Parsed:
    """A verified inbound SMS → one message event (status callbacks are acknowledged)."""
    fields = _fields(pairs)
    status = fields.get("SmsStatus") or fields.get("MessageStatus")
    if status and status != "received":
        return Parsed(ignored=["status"])
    sid = require_id(fields.get("MessageSid") or fields.get("SmsSid"), ("MessageSid",))
    require_id(fields.get("From"), ("From",))
    media: list[Attachment] = []
    count = size_of(fields.get("NumMedia")) or 0
    for i in range(min(count, MAX_MEDIA)):
        mime = fields.get(f"MediaContentType{i}")
        major = (mime or "file").split("/", 1)[0]
        media.append(attachment(major, url=fields.get(f"MediaUrl{i}"), mime=mime))
    return one_message(
        ctx,
        Channel.SMS,
        PROVIDER,
        sid,
        provider_ids={
            "account_sid": fields.get("AccountSid"),
            "messaging_service_sid": fields.get("MessagingServiceSid"),
            "to": fields.get("To"),
            "num_segments": fields.get("NumSegments"),
        },
        sender=_sender(fields.get("From")),
        text=fields.get("Body"),
        attachments=media,
        # Twilio sends no time with an inbound SMS: our arrival time stands in.
    )


def parse_voice(pairs: list[tuple[str, str]], ctx: EventContext) -> Parsed:
    """A verified Voice callback → call_missed, call_answered or voicemail (one per fact).

    * final `CallStatus` (or `<Dial>` `DialCallStatus`) busy/no-answer/failed/canceled →
      call_missed, once per call;
    * `completed` (or `DialCallStatus=completed|answered`) → call_answered, once per call;
    * a recording callback (`RecordingSid`) → voicemail with the recording's URL, once per
      recording; a transcription callback → voicemail with the transcript as its text;
    * ringing, in-progress and other progress callbacks are acknowledged and counted.
    """
    fields = _fields(pairs)
    call_sid = require_id(fields.get("CallSid"), ("CallSid",))
    call_status = (fields.get("CallStatus") or "").strip().lower()
    dial_status = (fields.get("DialCallStatus") or "").strip().lower()
    recording_sid = clean_short(fields.get("RecordingSid"), 64)
    transcript_sid = clean_short(fields.get("TranscriptionSid"), 64)
    recording_url = clean_url(fields.get("RecordingUrl"))

    text: str | None = None
    if transcript_sid or fields.get("TranscriptionText"):
        if (fields.get("TranscriptionStatus") or "completed") != "completed":
            return Parsed(ignored=["transcription_status"])
        kind, fact = InboundKind.VOICEMAIL, f"transcript:{transcript_sid or recording_sid}"
        text = fields.get("TranscriptionText")
    elif recording_sid or recording_url:
        if (fields.get("RecordingStatus") or "completed") != "completed":
            return Parsed(ignored=["recording_status"])
        fact = f"recording:{recording_sid or stable_id(recording_url or '')}"
        kind = InboundKind.VOICEMAIL
    elif dial_status in MISSED or (not dial_status and call_status in MISSED):
        kind, fact = InboundKind.CALL_MISSED, "missed"
    elif dial_status in ("completed", "answered") or (
        not dial_status and call_status == "completed"
    ):
        kind, fact = InboundKind.CALL_ANSWERED, "answered"
    else:
        status = call_status or dial_status
        return Parsed(ignored=[status if status in IGNORED_CALL_STATUSES else "other"])

    duration = fields.get("RecordingDuration") if kind is InboundKind.VOICEMAIL else None
    duration = duration or fields.get("DialCallDuration") or fields.get("CallDuration")
    status_label = dial_status or call_status or None
    return Parsed(
        events=[
            ctx.event(
                channel=Channel.VOICE,
                kind=kind,
                provider=PROVIDER,
                provider_message_id=f"{call_sid}:{fact}",
                provider_ids={
                    "call_sid": call_sid,
                    "account_sid": fields.get("AccountSid"),
                    "to": fields.get("To"),
                    "direction": fields.get("Direction"),
                    "recording_sid": recording_sid,
                    "transcription_sid": transcript_sid,
                },
                sender=_sender(fields.get("From") or fields.get("Caller")),
                text=text,
                call=CallInfo(
                    status=clean_short(status_label, 32),
                    duration_s=size_of(duration),
                    recording_url=recording_url,
                ),
                occurred_at=from_rfc2822(fields.get("Timestamp")),
            )
        ]
    )
