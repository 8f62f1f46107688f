"""One interface for every outbound channel, and the HTTP plumbing they share.

A channel turns a rendered message into one provider request and reports the answer as a
`SendResult` or a `SendError` that says whether trying again may help (`transient`) and how
long the provider asked us to wait (`retry_after`). Retrying, backoff, rate limiting and
falling back to the next channel are the delivery engine's job (`hotline_notifier.delivery`),
so each channel stays a small class that knows only its provider's wire format.
"""

from __future__ import annotations

import email.utils
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..http_client import HttpConnectionError, HttpReply, HttpTimeout, ProviderHttp
from ..provider_templates import MessageKind, TemplateMismatch, ordered_params


@dataclass(frozen=True)
class OutboundMessage:
    """What to say to one recipient, already rendered in their language."""

    subject: str
    text: str
    delivery_id: str
    tracking_id: str
    purpose: str
    kind: MessageKind
    """What it says: picks the provider template when the channel can only send one."""
    language: str = "vi"
    template_params: dict[str, str] = field(default_factory=dict)
    """Exactly the parameters of `kind`'s template (`provider_templates.TEMPLATE_PARAMS`)."""
    within_session: bool = False
    """The addressee wrote to us recently (WhatsApp 24-h window): free text is allowed."""
    phone: str | None = None
    """The addressee's phone number when one of their contacts gives it: where Zalo asks for
    the kind's ZNS template to go when a consultation message to their user id is refused
    (-213, `SendError.redirect`)."""


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str


class SendError(Exception):
    """A send that did not go through; `transient` errors are worth retrying."""

    def __init__(
        self,
        detail: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        status: int | None = None,
        code: int | None = None,
        redirect: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient
        self.retry_after = retry_after
        self.status = status  # the HTTP status, when the provider answered one
        self.code = code  # the provider's own error code, for a channel that acts on it
        self.redirect = redirect
        """Another address of the same person on this channel that the provider will take
        (Zalo: their phone, for ZNS, after -213). The delivery engine sends there once, through
        the rate limits of that address and its provider, before giving up on the channel."""

    @property
    def rate_limited(self) -> bool:
        return self.retry_after is not None


class Channel(ABC):
    """One outbound channel (a `Contact.channel`) spoken through one provider."""

    name: ClassVar[str]
    provider: ClassVar[str]
    max_text: ClassVar[int] = 4096

    def provider_for(self, address: str) -> str:
        """The provider (rate-limit bucket and sandbox name) used for this address."""
        return self.provider

    @abstractmethod
    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        """Send one message; raise SendError when the provider did not accept it."""

    def clip(self, text: str) -> str:
        return text if len(text) <= self.max_text else text[: self.max_text - 1] + "…"

    def template_values(self, message: OutboundMessage) -> list[tuple[str, str]]:
        """The message's template parameters in its template's order.

        Parameters other than the template's are a bug upstream, refused here (permanently,
        so the next channel is tried) rather than sent for the provider to refuse.
        """
        try:
            return ordered_params(message.kind, message.template_params)
        except TemplateMismatch as exc:
            detail = f"{self.provider}: template parameters: {exc}"
            raise SendError(detail, transient=False) from exc


class HttpChannel(Channel):
    """A channel whose provider is an HTTP API, using the process's shared HTTP client."""

    def __init__(self, http: ProviderHttp) -> None:
        self.http = http

    async def request(self, method: str, url: str, **kwargs: Any) -> HttpReply:
        """One HTTP request; network failures become transient SendErrors, 429/408/5xx too.

        Classification is by status, before any body is parsed: 5xx, 429 and 408 are worth
        retrying, every other 4xx is the caller's to refuse (`refuse`) as permanent.
        """
        try:
            response = await self.http.request(method, url, **kwargs)
        except HttpTimeout as exc:
            raise SendError(f"{self.provider}: timeout ({exc})", transient=True) from exc
        except HttpConnectionError as exc:
            raise SendError(f"{self.provider}: connection failed ({exc})", transient=True) from exc
        if response.status_code == 429:
            raise SendError(
                f"{self.provider}: 429 too many requests",
                transient=True,
                retry_after=self.retry_after(response),
                status=429,
            )
        if response.status_code >= 500 or response.status_code == 408:
            raise SendError(
                f"{self.provider}: HTTP {response.status_code}",
                transient=True,
                status=response.status_code,
            )
        return response

    def retry_after(self, response: HttpReply) -> float:
        """How long a 429 asks us to wait: its `Retry-After` header (a provider may say it
        elsewhere)."""
        return parse_retry_after(response.headers.get("Retry-After"))

    @staticmethod
    def json_or_none(response: HttpReply) -> dict[str, Any] | None:
        """The JSON object of an answer, or None when the body is anything else.

        For error answers: a 4xx is permanent whatever its body says (a proxy's HTML page, an
        empty body), so its body is read only to enrich the error, never to classify it.
        """
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def json(self, response: HttpReply) -> dict[str, Any]:
        """The JSON object of an answer; anything else is a provider fault (transient)."""
        try:
            body = response.json()
        except ValueError as exc:
            raise SendError(
                f"{self.provider}: answer is not JSON (HTTP {response.status_code})",
                transient=True,
                status=response.status_code,
            ) from exc
        if not isinstance(body, dict):
            raise SendError(f"{self.provider}: answer is not a JSON object", transient=True)
        return body

    def refuse(self, response: HttpReply, detail: str | None = None) -> SendError:
        """A permanent refusal (a 4xx other than 429/408): this channel fails at once.

        Without `detail`, the start of the body (whatever it is) describes the refusal.
        """
        if detail is None:
            detail = response.text
        return SendError(
            f"{self.provider}: HTTP {response.status_code}: {detail[:200]}",
            transient=False,
            status=response.status_code,
        )


def parse_retry_after(value: str | None, default: float = 1.0) -> float:
    """`Retry-After` as seconds (it may be a number of seconds or an HTTP date)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def monotonic() -> float:
    return time.monotonic()
