"""Zalo Official Account webhooks (API v3), PROVIDERS.md section 1."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ConfigDict, Field

from hotline.contracts.events import Sender
from hotline.contracts.labels import Channel
from hotline_ingest.normalize import (
    EventContext,
    IdStr,
    Malformed,
    Parsed,
    attachment,
    bounded_label,
    from_epoch,
    geo,
    require_id,
)
from hotline_ingest.providers import Lenient, load_json, one_message

PROVIDER = "zalo_oa"

# Events acknowledged but not published (labels of hotline_ingest_ignored_events_total).
IGNORED_EVENTS = frozenset(
    {
        "user_received_message",
        "user_seen_message",
        "follow",
        "unfollow",
        "oa_send_text",
        "oa_send_image",
        "oa_send_list",
        "oa_send_gif",
        "oa_send_file",
        "oa_send_sticker",
        "user_submit_info",
        "user_reacted_message",
        "oa_reacted_message",
        "add_user_to_tag",
        "shop_has_order",
    }
)


class ZaloUser(Lenient):
    id: IdStr | None = None


class ZaloCoordinates(Lenient):
    latitude: float | str | None = None
    longitude: float | str | None = None


class ZaloAttachmentPayload(Lenient):
    url: str | None = None
    thumbnail: str | None = None
    name: str | None = None
    size: int | str | None = None
    type: str | None = None
    coordinates: ZaloCoordinates | None = None


class ZaloAttachment(Lenient):
    type: str = "file"
    payload: ZaloAttachmentPayload | None = None


class ZaloMessage(Lenient):
    msg_id: IdStr | None = None
    text: str | None = None
    quote_msg_id: IdStr | None = None
    attachments: list[ZaloAttachment] = Field(default_factory=list)


class ZaloEvent(Lenient):
    """A Zalo OA webhook event (`user_send_*` events are citizen messages)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "app_id": "1234567890123456789",
                    "event_name": "user_send_text",
                    "sender": {"id": "8800112233445566"},
                    "recipient": {"id": "5577889900112233"},
                    "message": {"msg_id": "a1b2c3d4e5", "text": "Tôi cần hỗ trợ"},
                    "timestamp": "1718000000123",
                    "user_id_by_app": "4455667788990011",
                }
            ]
        }
    )

    app_id: str = Field(description="signed as the exact string in the body")
    event_name: str
    timestamp: str = Field(description="epoch milliseconds, as a string; signed as is")
    sender: ZaloUser | None = None
    recipient: ZaloUser | None = None
    message: ZaloMessage | None = None
    user_id_by_app: IdStr | None = None
    follower: ZaloUser | None = None
    oa_id: IdStr | None = None


def signed_fields(body: bytes) -> tuple[str, str] | None:
    """`app_id` and `timestamp` exactly as in the body: Zalo's signature covers them.

    None when they are not both strings (then nothing can match a genuine signature).
    Raises Malformed when the body is not a JSON object.
    """
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"body is not valid JSON: {exc}"[:300]) from None
    if not isinstance(data, dict):
        raise Malformed("body must be a JSON object")
    app_id, timestamp = data.get("app_id"), data.get("timestamp")
    if not isinstance(app_id, str) or not isinstance(timestamp, str):
        return None
    return app_id, timestamp


def _is_message(event_name: str) -> bool:
    return event_name.startswith(("user_send_", "anonymous_send_"))


def parse(body: bytes, ctx: EventContext) -> Parsed:
    """A verified Zalo body → at most one message event (other events are acknowledged)."""
    event = load_json(ZaloEvent, body)
    if not _is_message(event.event_name):
        return Parsed(ignored=[bounded_label(event.event_name, IGNORED_EVENTS)])
    message = event.message or ZaloMessage()
    message_id = require_id(message.msg_id, ("message", "msg_id"))
    sender_id = require_id(event.sender.id if event.sender else None, ("sender", "id"))

    attachments = []
    location = None
    for item in message.attachments:
        payload = item.payload or ZaloAttachmentPayload()
        if item.type == "location" and payload.coordinates is not None:
            location = location or geo(payload.coordinates.latitude, payload.coordinates.longitude)
            continue
        attachments.append(
            attachment(
                item.type,
                url=payload.url,
                size=payload.size,
                name=payload.name,
                mime=payload.type if item.type == "file" else None,
            )
        )
    return one_message(
        ctx,
        Channel.ZALO,
        PROVIDER,
        message_id,
        provider_ids={
            "app_id": event.app_id,
            "oa_id": event.recipient.id if event.recipient else None,
            "user_id_by_app": event.user_id_by_app,
            "event_name": event.event_name,
            "quote_msg_id": message.quote_msg_id,
        },
        sender=Sender(user_id=sender_id),
        text=message.text,
        attachments=attachments,
        location=location,
        occurred_at=from_epoch(event.timestamp, 1e-3),
    )
