"""Fault injection: make a provider misbehave for its next N requests (tests and drills)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    ERROR_500 = "error_500"  # HTTP 500 (SMTP 451): a transient server error
    RATE_LIMIT = "rate_limit"  # 429 + Retry-After; Telegram retry_after; Viber status 12; SMTP 421
    TIMEOUT = "timeout"  # hang without answering (until the client gives up)
    CLOSE = "close"  # close the connection in the middle of the answer
    NON_JSON = "non_json"  # 200 with an HTML body where JSON is expected
    BAD_REQUEST = "bad_request"  # a permanent 4xx the provider would give (SMTP 550)
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - Zalo -216: the access token must be refreshed


PROVIDERS = (
    "twilio",
    "esms",
    "zalo",
    "zns",
    "zalo_oauth",
    "viber",
    "whatsapp",
    "telegram",
    "webhook",
    "smtp",
)


@dataclass
class Fault:
    provider: str
    kind: FaultKind
    remaining: int
    retry_after: float = 1.0
    hang_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBoard:
    """Queued faults per provider, consumed in order, one request at a time."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def inject(
        self,
        provider: str,
        kind: FaultKind | str,
        count: int = 1,
        retry_after: float = 1.0,
        hang_s: float | None = None,
    ) -> Fault:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
        fault = Fault(provider, FaultKind(kind), count, retry_after, hang_s)
        self._faults.append(fault)
        return fault

    def take(self, provider: str) -> Fault | None:
        """The fault to apply to this request, if any (and count it down)."""
        for fault in self._faults:
            if fault.provider == provider and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def clear(self, provider: str | None = None) -> None:
        self._faults = [f for f in self._faults if provider is not None and f.provider != provider]
