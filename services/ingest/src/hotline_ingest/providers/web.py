"""The public web form and the call-takers' desk: our own JSON shapes, strictly validated.

Unlike provider webhooks (where a strange field must never lose a citizen's message), these
come from our own front ends, so a bad field is answered 422 and the person corrects it.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hotline.contracts.events import CallInfo, Sender
from hotline.contracts.labels import Channel, InboundKind
from hotline_ingest.normalize import (
    EventContext,
    Invalid,
    Parsed,
    clean_short,
    clean_text,
    geo,
    to_e164,
)
from hotline_ingest.providers import load_json, one_message

IDEMPOTENCY_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


class WebReport(BaseModel):
    """A report typed into the public web form."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "submission_id": "f3b0c44298fc1c149afbf4c8996fb924",
                    "text": "Có nhóm thanh niên đua xe trên đường Lê Duẩn",
                    "name": "Nguyễn Văn An",
                    "phone": "0912345678",
                    "place": "Đường Lê Duẩn, phường Phú Thuận",
                    "latitude": 16.4698,
                    "longitude": 107.5786,
                }
            ]
        },
    )

    submission_id: str | None = Field(
        default=None,
        pattern=IDEMPOTENCY_PATTERN,
        description="generated once per form by the browser: a resubmission is not a new "
        "report (without it every POST is a new report)",
    )
    text: str = Field(min_length=1, description="what happened (longer text is cut, flagged)")
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, description="to call the citizen back")
    place: str | None = Field(default=None, max_length=500)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    language: str | None = Field(default=None, max_length=16)


class CallSummary(BaseModel):
    """A call-taker's summary of a phone call they answered."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "summary_id": "cs-2024-0124-0001",
                    "caller_number": "0912345678",
                    "summary": "Người gọi báo cháy nhà kho, khói lớn, chưa có người bị thương",
                    "place": "Kiệt 12 Phan Đình Phùng, phường Vĩnh Ninh",
                    "call_id": "1718000000.42",
                }
            ]
        },
    )

    summary_id: str | None = Field(
        default=None,
        pattern=IDEMPOTENCY_PATTERN,
        description="generated once per summary by the desk client: a resubmission is ignored",
    )
    caller_number: str = Field(min_length=1, max_length=32)
    summary: str = Field(min_length=1)
    place: str | None = Field(default=None, max_length=500)
    caller_name: str | None = Field(default=None, max_length=200)
    call_id: str | None = Field(default=None, max_length=128, description="the PBX call id")
    call_started_at: AwareDatetime | None = None
    duration_s: int | None = Field(default=None, ge=0, le=86_400)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    language: str | None = Field(default=None, max_length=16)
    logged_for: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="the person at the desk, named by a desk client that signs people in (the "
        "console): the event's `logged_by`, so the case says who logged the call. Without it "
        "the desk token's own name is used",
    )


def _visible(text: str, field: str) -> None:
    if not clean_text(text)[0]:
        raise Invalid.field((field,), "must contain visible characters")


def parse_web(body: bytes, ctx: EventContext) -> Parsed:
    """A web-form post → one message event."""
    report = load_json(WebReport, body)
    _visible(report.text, "text")
    phone = None
    if report.phone and report.phone.strip():
        phone = to_e164(report.phone)
        if phone is None:
            raise Invalid.field(("phone",), "not a phone number (e.g. 0912345678)")
    return one_message(
        ctx,
        Channel.WEB,
        "web_form",
        report.submission_id or ctx.new_id(),
        sender=Sender(phone=phone, display_name=clean_short(report.name)),
        text=report.text,
        place=clean_short(report.place, 500),
        location=geo(report.latitude, report.longitude),
        language_hint=clean_short(report.language, 16),
    )


def parse_desk(body: bytes, ctx: EventContext, call_taker: str) -> Parsed:
    """A call-taker's summary → one call_summary event, logged by that call-taker."""
    summary = load_json(CallSummary, body)
    _visible(summary.summary, "summary")
    phone = to_e164(summary.caller_number)
    if phone is None:
        raise Invalid.field(("caller_number",), "not a phone number (e.g. 0912345678)")
    return Parsed(
        events=[
            ctx.event(
                channel=Channel.DESK,
                kind=InboundKind.CALL_SUMMARY,
                provider="desk",
                provider_message_id=summary.summary_id or ctx.new_id(),
                provider_ids={"call_id": summary.call_id},
                sender=Sender(phone=phone, display_name=clean_short(summary.caller_name)),
                text=summary.summary,
                place=clean_short(summary.place, 500),
                location=geo(summary.latitude, summary.longitude),
                call=CallInfo(
                    status="answered",
                    duration_s=summary.duration_s,
                    agent=summary.logged_for or call_taker,
                ),
                language_hint=clean_short(summary.language, 16),
                logged_by=summary.logged_for or call_taker,
                occurred_at=summary.call_started_at,
            )
        ]
    )
