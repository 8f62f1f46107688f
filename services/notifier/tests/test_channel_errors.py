"""A provider's HTTP status decides whether a failed send is retried, whatever the body says.

A 4xx (other than 429 and 408) fails the channel at once even when its body is not JSON (an
HTML page from a proxy, an empty body); 5xx, 429 and 408 are transient even with such a body.
No sandbox here: a local HTTP server (aiohttp.web on 127.0.0.1) answers every request the way
the case needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web

from hotline_notifier.channels import OutboundMessage, SendError, build_channels
from hotline_notifier.http_client import ProviderHttp
from hotline_notifier.provider_templates import MessageKind
from hotline_notifier.settings import NotifierSettings

from .conftest import ALERT_PARAMS

MESSAGE = OutboundMessage(
    subject="[KHẨN CẤP] Vụ việc HUE-20240124-0042",
    text="[KHẨN CẤP] Vụ việc HUE-20240124-0042",
    delivery_id="d" * 32,
    tracking_id="HUE-20240124-0042",
    purpose="alert",
    kind=MessageKind.ALERT,
    template_params=ALERT_PARAMS,
)
HTML = "<html><body><h1>400 Bad Request</h1>nginx</body></html>"
# (contact channel, settings overrides, an address) for every HTTP channel.
CHANNELS = [
    ("sms", {"sms_providers": ["twilio"]}, "+84905111222"),
    ("sms", {"sms_providers": ["esms"]}, "+84905111222"),
    ("whatsapp", {}, "+84905111222"),
    ("telegram", {}, "123456789"),
    ("viber", {}, "aB3dE5fG7hI9jK1l=="),
    ("zalo", {}, "7700112233445566"),
    ("webhook", {}, "ops-room"),
]
IDS = ["twilio", "esms", "whatsapp", "telegram", "viber", "zalo", "webhook"]


Answer = Callable[[], web.Response]


@dataclass
class Provider:
    """Every provider at one local address; `answer` makes the next response."""

    url: str
    answer: Answer | None = None


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    async def handle(_: web.Request) -> web.Response:
        assert state.answer is not None
        return state.answer()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state = Provider(f"http://127.0.0.1:{port}")
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[ProviderHttp]:
    client = ProviderHttp(connect_timeout_s=1, read_timeout_s=1, total_timeout_s=5)
    try:
        yield client
    finally:
        await client.aclose()


async def send(
    http: ProviderHttp, provider: Provider, name: str, overrides: dict[str, object], to: str
) -> None:
    base = {
        key: provider.url
        for key in NotifierSettings.model_fields
        if key.endswith("_base_url") and key != "public_base_url"
    }
    settings = NotifierSettings(**{**base, **overrides})  # type: ignore[arg-type]
    [channel] = build_channels(settings, http).for_contact(name)
    await channel.send(to, MESSAGE)


def text(status: int, body: str, content_type: str) -> Answer:
    return lambda: web.Response(status=status, text=body, content_type=content_type)


@pytest.mark.parametrize(("name", "overrides", "to"), CHANNELS, ids=IDS)
@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (400, HTML, "text/html"),
        (403, "", "text/plain"),
        (404, "Not Found", "text/plain"),
    ],
)
async def test_a_4xx_without_json_fails_the_channel_at_once(
    http: ProviderHttp,
    provider: Provider,
    name: str,
    overrides: dict[str, object],
    to: str,
    status: int,
    body: str,
    content_type: str,
) -> None:
    provider.answer = text(status, body, content_type)
    with pytest.raises(SendError) as err:
        await send(http, provider, name, overrides, to)
    assert not err.value.transient, err.value.detail
    assert err.value.status == status
    assert err.value.retry_after is None


@pytest.mark.parametrize(("name", "overrides", "to"), CHANNELS, ids=IDS)
@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_5xx_429_and_408_are_transient_whatever_the_body(
    http: ProviderHttp,
    provider: Provider,
    name: str,
    overrides: dict[str, object],
    to: str,
    status: int,
) -> None:
    provider.answer = text(status, HTML, "text/html")
    with pytest.raises(SendError) as err:
        await send(http, provider, name, overrides, to)
    assert err.value.transient, err.value.detail
    assert err.value.status == status
    assert (err.value.retry_after is not None) == (status == 429)


async def test_whatsapp_4xx_with_a_graph_error_keeps_its_code(
    http: ProviderHttp, provider: Provider
) -> None:
    # A JSON error body still names the Graph code (131047 drives the template fallback,
    # 131056 is a per-pair rate limit).
    provider.answer = lambda: web.json_response(
        {"error": {"code": 131056, "message": "pair rate limit hit"}}, status=400
    )
    with pytest.raises(SendError) as limited:
        await send(http, provider, "whatsapp", {}, "+84905111222")
    assert limited.value.transient and limited.value.retry_after == 6.0
    provider.answer = lambda: web.json_response(
        {"error": {"code": 100, "message": "Invalid parameter"}}, status=400
    )
    with pytest.raises(SendError) as invalid:
        await send(http, provider, "whatsapp", {}, "+84905111222")
    assert not invalid.value.transient and invalid.value.status == 100


async def test_a_2xx_that_is_not_json_is_still_a_provider_fault(
    http: ProviderHttp, provider: Provider
) -> None:
    provider.answer = text(201, "<html>ok?</html>", "text/html")
    with pytest.raises(SendError, match="not JSON") as err:
        await send(http, provider, "sms", {"sms_providers": ["twilio"]}, "+84905111222")
    assert err.value.transient
