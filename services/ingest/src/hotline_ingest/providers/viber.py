"""Viber REST Bot API callbacks, PROVIDERS.md section 2."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from hotline.contracts.events import Sender
from hotline.contracts.labels import Channel
from hotline_ingest.normalize import (
    EventContext,
    IdStr,
    Parsed,
    attachment,
    bounded_label,
    clean_short,
    from_epoch,
    geo,
    require_id,
)
from hotline_ingest.providers import Lenient, load_json, one_message

PROVIDER = "viber"

IGNORED_EVENTS = frozenset(
    {
        "webhook",
        "subscribed",
        "unsubscribed",
        "conversation_started",
        "delivered",
        "seen",
        "failed",
        "client_status",
    }
)
MEDIA_TYPES = frozenset({"picture", "video", "file", "sticker", "url"})


class ViberSender(Lenient):
    id: str
    name: str | None = None
    avatar: str | None = None
    language: str | None = None
    country: str | None = None
    api_version: int | None = None


class ViberLocation(Lenient):
    lat: float | None = None
    lon: float | None = None


class ViberContact(Lenient):
    name: str | None = None
    phone_number: str | None = None


class ViberMessage(Lenient):
    type: str = "text"
    text: str | None = None
    media: str | None = None
    location: ViberLocation | None = None
    contact: ViberContact | None = None
    tracking_data: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    size: int | None = None
    sticker_id: IdStr | None = None


class ViberCallback(Lenient):
    """A Viber callback; `event=message` is a citizen message, the rest are acknowledged."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event": "message",
                    "timestamp": 1718000000123,
                    "chat_hostname": "SN-CHAT-05_",
                    "message_token": 5466394919049723652,
                    "sender": {"id": "aB3dE5fG7hI9jK1l==", "name": "Nguyen A", "language": "vi"},
                    "message": {"type": "text", "text": "Báo tin khẩn"},
                    "silent": False,
                }
            ]
        }
    )

    event: str
    timestamp: int | None = Field(default=None, description="epoch milliseconds")
    chat_hostname: str | None = None
    message_token: IdStr | None = Field(default=None, description="64-bit: kept as a string")
    sender: ViberSender | None = None
    message: ViberMessage | None = None
    user_id: str | None = None
    silent: bool | None = None


def parse(body: bytes, ctx: EventContext) -> Parsed:
    """A verified Viber body → one message event, or an acknowledged non-message event."""
    callback = load_json(ViberCallback, body)
    if callback.event != "message":
        return Parsed(ignored=[bounded_label(callback.event, IGNORED_EVENTS)])
    token = require_id(callback.message_token, ("message_token",))
    sender_id = require_id(callback.sender.id if callback.sender else None, ("sender", "id"))
    sender = callback.sender
    message = callback.message or ViberMessage()

    attachments = []
    if message.type in MEDIA_TYPES and message.media:
        kind = {"picture": "image", "url": "link"}.get(message.type, message.type)
        attachments.append(
            attachment(
                kind,
                url=message.media,
                size=message.file_size or message.size,
                name=message.file_name,
            )
        )
    if message.type == "contact" and message.contact is not None:
        attachments.append(attachment("contact", name=message.contact.name))
    location = None
    if message.location is not None:
        location = geo(message.location.lat, message.location.lon)
    return one_message(
        ctx,
        Channel.VIBER,
        PROVIDER,
        token,
        provider_ids={
            "message_token": token,
            "message_type": message.type,
            "chat_hostname": callback.chat_hostname,
            "tracking_data": message.tracking_data,
        },
        sender=Sender(
            user_id=sender_id,
            display_name=clean_short(sender.name) if sender else None,
        ),
        text=message.text,
        attachments=attachments,
        location=location,
        language_hint=clean_short(sender.language, 16) if sender else None,
        occurred_at=from_epoch(callback.timestamp, 1e-3),
    )
