"""Turning alerts, case events and decisions into rendered notifications (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hotline.clock import LOCAL_TZ
from hotline.contracts.events import (
    Contact,
    DeliveryPurpose,
    DirectiveIssuer,
    Recipient,
    Reporter,
)
from hotline.contracts.labels import Channel
from hotline.ids import stable_id
from hotline.privacy import mask_address, mask_name, mask_text

from .delivery import FirstAlert, Notification
from .models import AlertState
from .provider_templates import MessageKind, template_params
from .templates import Templates, language_of

REPLYABLE = {Channel.SMS, Channel.ZALO, Channel.VIBER, Channel.WHATSAPP, Channel.TELEGRAM}
WHATSAPP_WINDOW = timedelta(hours=24)


def local_time(value: datetime | None) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y") if value else ""


def reporter_line(reporter: Reporter, may_see: bool) -> str:
    """How the reporter is shown to a recipient: in full only if their role may see it."""
    parts: list[str] = []
    if reporter.display_name:
        parts.append(reporter.display_name if may_see else mask_name(reporter.display_name))
    contact = reporter.phone or reporter.address
    if contact:
        parts.append(contact if may_see else mask_address(contact))
    channel = reporter.channel.value
    return f"{', '.join(parts)} ({channel})" if parts else f"({channel})"


def where(district: str, locality: str | None) -> str:
    """'Phú Đa, huyện Phú Vang': the place the report names, then its district."""
    return f"{locality}, {district}" if locality else district


def waited(seconds: int, language: str) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} phút" if language == "vi" else f"{minutes} min"


def recipient_language(recipient: Recipient) -> str:
    """Officers read Vietnamese."""
    return "vi"


class Composer:
    def __init__(self, templates: Templates, public_base_url: str) -> None:
        self.templates = templates
        self.public_base_url = public_base_url.rstrip("/")

    def ack_url(self, token: str) -> str:
        return f"{self.public_base_url}/ack/{token}"

    def _case_fields(self, state: AlertState, recipient: Recipient, lang: str) -> dict[str, str]:
        t = self.templates
        summary = state.summary if recipient.may_see_reporter else mask_text(state.summary)
        return {
            "case_id": state.case_id,
            "priority": state.priority.value,
            "priority_label": t.label("priority", state.priority.value, lang),
            "category": t.label("category", state.category.value, lang),
            "location": where(
                t.label("location", state.location.value if state.location else None, lang),
                state.locality,
            ),
            "summary": summary,
            "reporter": reporter_line(state.reporter, recipient.may_see_reporter),
            "unit": state.unit or "",
            "received_at": local_time(state.received_at),
            "acked_at": local_time(state.acked_at),
        }

    def for_level(
        self,
        state: AlertState,
        level: int,
        recipient: Recipient,
        token: str | None,
        *,
        purpose: DeliveryPurpose,
        step: str,
        first_alert: FirstAlert | None = None,
    ) -> Notification:
        """An alert, escalation, repeat, callback task or inform message for one recipient."""
        lang = recipient_language(recipient)
        kind = {
            DeliveryPurpose.ALERT: MessageKind.ALERT,
            DeliveryPurpose.ESCALATION: MessageKind.ESCALATION,
            DeliveryPurpose.CALLBACK_TASK: MessageKind.CALLBACK_TASK,
            DeliveryPurpose.INFORM: MessageKind.INFORM,
            DeliveryPurpose.REMINDER: MessageKind.REMINDER,
        }[purpose]
        fields = self._case_fields(state, recipient, lang)
        previous = next((lvl for lvl in state.chain if lvl.level == level - 1), None)
        fields.update(
            {
                "ack_url": self.ack_url(token) if token else "",
                "level": str(level),
                "role": self.templates.label("role", recipient.role.value, lang),
                "waited": waited(previous.timeout_s if previous else 0, lang),
            }
        )
        rendered = self.templates.render(kind, lang, fields)
        # A template shows the priority's label, and a summary short enough for a parameter.
        params = {
            **fields,
            "priority": fields["priority_label"],
            "summary": fields["summary"][:300],
        }
        return Notification(
            source_id=state.source_id,
            step=step,
            purpose=purpose,
            recipient_id=recipient.person_id,
            recipient_role=recipient.role.value,
            contacts=list(recipient.contacts),
            subject=rendered.subject,
            text=rendered.text,
            kind=kind,
            case_id=state.case_id,
            event_id=state.source_id,
            level=level,
            language=lang,
            template_params=template_params(kind, params),
            received_at=state.received_at,
            first_alert=first_alert,
        )

    def for_directive(
        self,
        *,
        source_id: str,
        case_id: str,
        recipient: Recipient,
        text: str,
        deadline: datetime | None,
        reminder: bool,
        issuer: DirectiveIssuer = DirectiveIssuer.STAFF_OFFICE,
    ) -> Notification:
        lang = recipient_language(recipient)
        kind = MessageKind.DIRECTIVE_REMINDER if reminder else MessageKind.DIRECTIVE
        fields = {
            "case_id": case_id,
            "directive": text,
            "issuer": self.templates.label("issuer", issuer.value, lang),
            "deadline": local_time(deadline),
        }
        rendered = self.templates.render(kind, lang, fields)
        return Notification(
            source_id=source_id,
            step=kind.value,
            purpose=DeliveryPurpose.REMINDER if reminder else DeliveryPurpose.DIRECTIVE,
            recipient_id=recipient.person_id,
            recipient_role=recipient.role.value,
            contacts=list(recipient.contacts),
            subject=rendered.subject,
            text=rendered.text,
            kind=kind,
            case_id=case_id,
            event_id=source_id,
            language=lang,
            template_params=template_params(kind, {**fields, "directive": text[:300]}),
        )

    def for_citizen(
        self,
        *,
        source_id: str,
        purpose: DeliveryPurpose,
        reporter: Reporter,
        case_id: str | None,
        now: datetime,
        received_at: datetime | None,
    ) -> Notification:
        """A receipt, courtesy reply or closure notice on the citizen's own channel.

        `received_at` is the report being answered (for the end-to-end latency); a reply about
        a case (receipt after a correction, closure) has none, and WhatsApp's 24-hour window
        then runs from the citizen's last message on the case (`Reporter.last_message_at`).
        """
        kind = {
            DeliveryPurpose.CITIZEN_RECEIPT: MessageKind.CITIZEN_RECEIPT,
            DeliveryPurpose.CITIZEN_COURTESY: MessageKind.CITIZEN_COURTESY,
            DeliveryPurpose.CITIZEN_CLOSURE: MessageKind.CITIZEN_CLOSURE,
        }[purpose]
        lang = language_of(reporter.language.value)
        fields = {"case_id": case_id or ""}
        rendered = self.templates.render(kind, lang, fields)
        return Notification(
            source_id=source_id,
            step=kind.value,
            purpose=purpose,
            recipient_id=citizen_id(reporter),
            recipient_role="citizen",
            contacts=citizen_contacts(reporter),
            subject=rendered.subject,
            text=rendered.text,
            kind=kind,
            case_id=case_id,
            event_id=source_id,
            language=lang,
            # The case number only: a template's wording is fixed, never the rendered text.
            template_params=template_params(kind, fields),
            within_session=within_window(received_at or reporter.last_message_at, now),
            received_at=received_at,
        )


def within_window(last_message_at: datetime | None, now: datetime) -> bool:
    """Free text allowed: the citizen wrote less than 24 hours ago (WhatsApp's session)."""
    return last_message_at is not None and now - last_message_at < WHATSAPP_WINDOW


def citizen_contacts(reporter: Reporter) -> list[Contact]:
    """The citizen's original channel first; SMS to their phone as the fallback.

    Voice, desk and web reporters are answered by SMS when a phone number is known.
    """
    contacts: list[Contact] = []
    if reporter.channel in REPLYABLE:
        address = reporter.address or (reporter.phone if reporter.channel == Channel.SMS else None)
        if address:
            contacts.append(Contact(channel=reporter.channel.value, address=address))
    if reporter.phone and not any(
        c.channel == "sms" and c.address == reporter.phone for c in contacts
    ):
        contacts.append(Contact(channel="sms", address=reporter.phone))
    return contacts


def citizen_id(reporter: Reporter) -> str:
    """A stable pseudonymous id for a citizen (never the phone number itself)."""
    key = reporter.address or reporter.phone or ""
    return "citizen-" + stable_id(reporter.channel.value, key)[:16]
