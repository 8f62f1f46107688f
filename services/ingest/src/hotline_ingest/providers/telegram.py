"""Telegram Bot API webhook updates, PROVIDERS.md section 4.

Deduplicated on `update_id` (Telegram resends the same update until it gets a 2xx). The reply
address is the chat id; the phone number is known only when the user shared their own contact.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from hotline.contracts.events import Attachment, Sender
from hotline.contracts.labels import Channel
from hotline_ingest.normalize import (
    EventContext,
    IdStr,
    Parsed,
    attachment,
    clean_short,
    from_epoch,
    geo,
    require_id,
    to_e164,
)
from hotline_ingest.providers import Lenient, load_json, one_message

PROVIDER = "telegram"

IGNORED_UPDATES = frozenset(
    {
        "callback_query",
        "channel_post",
        "edited_channel_post",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "inline_query",
        "poll",
        "poll_answer",
        "message_reaction",
    }
)
FILE_KINDS = ("document", "audio", "voice", "video", "video_note", "sticker", "animation")


class TgUser(Lenient):
    id: IdStr
    is_bot: bool = False
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


class TgChat(Lenient):
    id: IdStr
    type: str | None = None


class TgContact(Lenient):
    phone_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    user_id: IdStr | None = None


class TgLocation(Lenient):
    latitude: float | None = None
    longitude: float | None = None


class TgFile(Lenient):
    file_id: str | None = None
    file_unique_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


class TgMessage(Lenient):
    message_id: IdStr
    from_: TgUser | None = Field(default=None, alias="from")
    chat: TgChat
    date: int | None = Field(default=None, description="epoch seconds")
    edit_date: int | None = None
    text: str | None = None
    caption: str | None = None
    contact: TgContact | None = None
    location: TgLocation | None = None
    photo: list[TgFile] = Field(default_factory=list)
    document: TgFile | None = None
    audio: TgFile | None = None
    voice: TgFile | None = None
    video: TgFile | None = None
    video_note: TgFile | None = None
    sticker: TgFile | None = None
    animation: TgFile | None = None


class TgUpdate(Lenient):
    """A Telegram `Update`; `message` and `edited_message` are citizen messages."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "update_id": 918273645,
                    "message": {
                        "message_id": 42,
                        "from": {"id": 7001002003, "is_bot": False, "first_name": "Lan"},
                        "chat": {"id": 7001002003, "type": "private"},
                        "date": 1718000000,
                        "text": "Có tai nạn ở cầu Trường Tiền",
                    },
                }
            ]
        }
    )

    update_id: IdStr
    message: TgMessage | None = None
    edited_message: TgMessage | None = None


def _media(message: TgMessage) -> list[Attachment]:
    found: list[Attachment] = []
    if message.photo:
        largest = max(message.photo, key=lambda p: p.file_size or 0)
        found.append(attachment("image", name=largest.file_id, size=largest.file_size))
    for kind in FILE_KINDS:
        item: TgFile | None = getattr(message, kind)
        if item is not None:
            found.append(
                attachment(
                    kind,
                    name=item.file_name or item.file_id,
                    size=item.file_size,
                    mime=item.mime_type,
                )
            )
    if message.contact is not None:
        name = " ".join(p for p in (message.contact.first_name, message.contact.last_name) if p)
        found.append(attachment("contact", name=name or None))
    return found


def parse(body: bytes, ctx: EventContext) -> Parsed:
    """A verified update → one message event, or an acknowledged non-message update."""
    update = load_json(TgUpdate, body)
    message = update.message or update.edited_message
    if message is None:
        extra = update.model_extra or {}
        kind = next((k for k in extra if k in IGNORED_UPDATES), "other")
        return Parsed(ignored=[kind])
    field = "message" if update.message is not None else "edited_message"
    update_id = require_id(update.update_id, ("update_id",))
    chat_id = require_id(message.chat.id, (field, "chat", "id"))
    user = message.from_
    if user is not None and user.is_bot:
        return Parsed(ignored=["bot"])
    phone = None
    if message.contact is not None and user is not None and message.contact.user_id == user.id:
        phone = to_e164(message.contact.phone_number)  # the user shared their own number
    name = " ".join(p for p in (user.first_name, user.last_name) if p) if user else ""
    return one_message(
        ctx,
        Channel.TELEGRAM,
        PROVIDER,
        update_id,
        provider_ids={
            "update_id": update_id,
            "message_id": message.message_id,
            "chat_id": chat_id,
            "from_id": user.id if user else None,
            "chat_type": message.chat.type,
            "edited": "true" if update.message is None else None,
        },
        sender=Sender(phone=phone, user_id=chat_id, display_name=clean_short(name)),
        text=message.text if message.text is not None else message.caption,
        attachments=_media(message),
        location=geo(message.location.latitude, message.location.longitude)
        if message.location
        else None,
        language_hint=clean_short(user.language_code, 16) if user else None,
        occurred_at=from_epoch(message.edit_date or message.date, 1.0),
    )
