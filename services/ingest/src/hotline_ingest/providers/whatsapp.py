"""WhatsApp Business Cloud API webhooks (Meta), PROVIDERS.md section 3.

One POST may batch several entries, changes and messages: every message becomes its own event
(deduplicated on its `wamid`); `statuses` of our outbound messages are acknowledged and counted.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from hotline.contracts.events import Attachment, Sender
from hotline.contracts.labels import Channel, InboundKind
from hotline_ingest.normalize import (
    EventContext,
    Parsed,
    attachment,
    clean_short,
    from_epoch,
    geo,
    require_id,
    to_e164,
)
from hotline_ingest.providers import Lenient, load_json

PROVIDER = "whatsapp_cloud"

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker", "voice")
TEXT_TYPES = frozenset({"text", "button", "interactive", "location", "contacts", *MEDIA_TYPES})


class WaText(Lenient):
    body: str | None = None


class WaMedia(Lenient):
    id: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    filename: str | None = None
    file_size: int | None = None


class WaLocation(Lenient):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None


class WaButton(Lenient):
    text: str | None = None
    payload: str | None = None


class WaReply(Lenient):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class WaInteractive(Lenient):
    type: str | None = None
    button_reply: WaReply | None = None
    list_reply: WaReply | None = None


class WaContactName(Lenient):
    formatted_name: str | None = None


class WaSharedContact(Lenient):
    name: WaContactName | None = None


class WaMessage(Lenient):
    from_: str = Field(alias="from", description="the sender's wa_id (international, no +)")
    id: str = Field(description="wamid…")
    timestamp: str | int | None = Field(default=None, description="epoch seconds, as a string")
    type: str = "text"
    text: WaText | None = None
    image: WaMedia | None = None
    audio: WaMedia | None = None
    video: WaMedia | None = None
    document: WaMedia | None = None
    sticker: WaMedia | None = None
    voice: WaMedia | None = None
    location: WaLocation | None = None
    button: WaButton | None = None
    interactive: WaInteractive | None = None
    contacts: list[WaSharedContact] = Field(default_factory=list)


class WaProfile(Lenient):
    name: str | None = None


class WaContact(Lenient):
    profile: WaProfile | None = None
    wa_id: str | None = None


class WaMetadata(Lenient):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


class WaValue(Lenient):
    messaging_product: str | None = None
    metadata: WaMetadata | None = None
    contacts: list[WaContact] = Field(default_factory=list)
    messages: list[WaMessage] = Field(default_factory=list)
    statuses: list[dict[str, object]] = Field(default_factory=list)


class WaChange(Lenient):
    field: str
    value: WaValue | None = None


class WaEntry(Lenient):
    id: str
    changes: list[WaChange] = Field(default_factory=list)


class WaNotification(Lenient):
    """A WhatsApp Cloud API webhook notification."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "whatsapp_business_account",
                    "entry": [
                        {
                            "id": "100200300400500",
                            "changes": [
                                {
                                    "field": "messages",
                                    "value": {
                                        "messaging_product": "whatsapp",
                                        "metadata": {
                                            "display_phone_number": "84281234567",
                                            "phone_number_id": "109876543210",
                                        },
                                        "contacts": [
                                            {"profile": {"name": "Tran B"}, "wa_id": "84912345678"}
                                        ],
                                        "messages": [
                                            {
                                                "from": "84912345678",
                                                "id": "wamid.HBgLODQ5MTIzNDU2NzgVAgASGBQ",
                                                "timestamp": "1718000000",
                                                "type": "text",
                                                "text": {"body": "Có trộm"},
                                            }
                                        ],
                                    },
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )

    object: str
    entry: list[WaEntry] = Field(default_factory=list)


def _content(message: WaMessage) -> tuple[str | None, list[Attachment]]:
    """The text a citizen typed (or chose) and the media metadata of one message."""
    media: list[Attachment] = []
    for kind in MEDIA_TYPES:
        item: WaMedia | None = getattr(message, kind)
        if item is not None:
            media.append(
                attachment(
                    kind, name=item.filename or item.id, size=item.file_size, mime=item.mime_type
                )
            )
            return item.caption, media
    if message.text is not None:
        return message.text.body, media
    if message.button is not None:
        return message.button.text, media
    if message.interactive is not None:
        reply = message.interactive.button_reply or message.interactive.list_reply
        return (reply.title if reply else None), media
    if message.location is not None:
        parts = [p for p in (message.location.name, message.location.address) if p]
        return ", ".join(parts) or None, media
    for contact in message.contacts:
        name = contact.name.formatted_name if contact.name else None
        media.append(attachment("contact", name=name))
    return None, media


def parse(body: bytes, ctx: EventContext) -> Parsed:
    """A verified notification → one event per message; statuses and the rest are counted."""
    notification = load_json(WaNotification, body)
    parsed = Parsed()
    if notification.object != "whatsapp_business_account":
        parsed.ignored.append("other")
        return parsed
    for e, entry in enumerate(notification.entry):
        for c, change in enumerate(entry.changes):
            value = change.value
            if change.field != "messages" or value is None:
                parsed.ignored.append("other")
                continue
            parsed.ignored.extend("status" for _ in value.statuses)
            names = {
                contact.wa_id: contact.profile.name
                for contact in value.contacts
                if contact.wa_id and contact.profile
            }
            for m, message in enumerate(value.messages):
                if message.type not in TEXT_TYPES:  # reaction, system, order, unsupported…
                    parsed.ignored.append(
                        message.type if message.type in ("reaction", "system") else "other"
                    )
                    continue
                loc = ("entry", e, "changes", c, "value", "messages", m)
                wamid = require_id(message.id, (*loc, "id"))
                wa_id = require_id(message.from_, (*loc, "from"))
                text, media = _content(message)
                phone = to_e164("+" + wa_id.lstrip("+"))
                parsed.events.append(
                    ctx.event(
                        channel=Channel.WHATSAPP,
                        kind=InboundKind.MESSAGE,
                        provider=PROVIDER,
                        provider_message_id=wamid,
                        provider_ids={
                            "waba_id": entry.id,
                            "phone_number_id": value.metadata.phone_number_id
                            if value.metadata
                            else None,
                            "message_type": message.type,
                        },
                        # WhatsApp answers by wa_id, which is the phone number: both are kept.
                        sender=Sender(
                            phone=phone,
                            user_id=wa_id,
                            display_name=clean_short(names.get(wa_id)),
                        ),
                        text=text,
                        attachments=media,
                        location=geo(message.location.latitude, message.location.longitude)
                        if message.location
                        else None,
                        occurred_at=from_epoch(message.timestamp, 1.0),
                    )
                )
    return parsed
