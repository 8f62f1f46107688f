"""One module per channel: the provider's request shape (also its OpenAPI schema) and a pure
parser from the verified raw body to normalised inbound events. No I/O here."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from hotline_ingest.normalize import Invalid

M = TypeVar("M", bound=BaseModel)


def load_json(model: type[M], body: bytes) -> M:
    """Validate a JSON body against a request model: Malformed (400) or Invalid (422)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None
