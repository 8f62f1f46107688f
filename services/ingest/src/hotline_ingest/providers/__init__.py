"""One module per channel: the provider's request shape (also its OpenAPI schema) and a pure
parser from the verified raw body to normalised inbound events. No I/O here."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from hotline.contracts.labels import Channel, InboundKind
from hotline_ingest.normalize import EventContext, Invalid, Parsed

M = TypeVar("M", bound=BaseModel)


class Lenient(BaseModel):
    """A provider's request model: fields it adds later are kept, not refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def load_json(model: type[M], body: bytes) -> M:
    """Validate a JSON body against a request model: Malformed (400) or Invalid (422)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None


def one_message(
    ctx: EventContext, channel: Channel, provider: str, message_id: str, **fields: Any
) -> Parsed:
    """A request that carries one citizen message: its event (fields as for `ctx.event`)."""
    return Parsed(
        events=[
            ctx.event(
                channel=channel,
                kind=InboundKind.MESSAGE,
                provider=provider,
                provider_message_id=message_id,
                **fields,
            )
        ]
    )
