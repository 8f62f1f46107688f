"""A provider's HTTP status decides whether a failed send is retried, whatever the body says.

A 4xx (other than 429 and 408) fails the channel at once even when its body is not JSON (an
HTML page from a proxy, an empty body); 5xx, 429 and 408 are transient even with such a body.
No sandbox here: an httpx MockTransport answers every request the way the case needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from hotline_notifier.channels import OutboundMessage, SendError, build_channels
from hotline_notifier.settings import NotifierSettings

MESSAGE = OutboundMessage(
    subject="[KHẨN CẤP] Vụ việc HUE-20240124-0042",
    text="[KHẨN CẤP] Vụ việc HUE-20240124-0042",
    delivery_id="d" * 32,
    tracking_id="HUE-20240124-0042",
    purpose="alert",
    template_params={"case_id": "HUE-20240124-0042"},
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


Answer = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def answer() -> dict[str, Answer]:
    return {}


@pytest.fixture
async def http(answer: dict[str, Answer]) -> AsyncIterator[httpx.AsyncClient]:
    async def handler(request: httpx.Request) -> httpx.Response:
        return answer["now"](request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        yield client


async def send(http: httpx.AsyncClient, name: str, overrides: dict[str, object], to: str) -> None:
    settings = NotifierSettings(**overrides)  # type: ignore[arg-type]
    [channel] = build_channels(settings, http).for_contact(name)
    await channel.send(to, MESSAGE)


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
    http: httpx.AsyncClient,
    answer: dict[str, Answer],
    name: str,
    overrides: dict[str, object],
    to: str,
    status: int,
    body: str,
    content_type: str,
) -> None:
    answer["now"] = lambda _: httpx.Response(
        status, text=body, headers={"content-type": content_type}
    )
    with pytest.raises(SendError) as err:
        await send(http, name, overrides, to)
    assert not err.value.transient, err.value.detail
    assert err.value.status == status
    assert err.value.retry_after is None


@pytest.mark.parametrize(("name", "overrides", "to"), CHANNELS, ids=IDS)
@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_5xx_429_and_408_are_transient_whatever_the_body(
    http: httpx.AsyncClient,
    answer: dict[str, Answer],
    name: str,
    overrides: dict[str, object],
    to: str,
    status: int,
) -> None:
    answer["now"] = lambda _: httpx.Response(
        status, text=HTML, headers={"content-type": "text/html"}
    )
    with pytest.raises(SendError) as err:
        await send(http, name, overrides, to)
    assert err.value.transient, err.value.detail
    assert err.value.status == status
    assert (err.value.retry_after is not None) == (status == 429)


async def test_whatsapp_4xx_with_a_graph_error_keeps_its_code(
    http: httpx.AsyncClient, answer: dict[str, Answer]
) -> None:
    # A JSON error body still names the Graph code (131047 drives the template fallback,
    # 131056 is a per-pair rate limit).
    answer["now"] = lambda _: httpx.Response(
        400, json={"error": {"code": 131056, "message": "pair rate limit hit"}}
    )
    with pytest.raises(SendError) as limited:
        await send(http, "whatsapp", {}, "+84905111222")
    assert limited.value.transient and limited.value.retry_after == 6.0
    answer["now"] = lambda _: httpx.Response(
        400, json={"error": {"code": 100, "message": "Invalid parameter"}}
    )
    with pytest.raises(SendError) as invalid:
        await send(http, "whatsapp", {}, "+84905111222")
    assert not invalid.value.transient and invalid.value.status == 100


async def test_a_2xx_that_is_not_json_is_still_a_provider_fault(
    http: httpx.AsyncClient, answer: dict[str, Answer]
) -> None:
    answer["now"] = lambda _: httpx.Response(
        201, text="<html>ok?</html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(SendError, match="not JSON") as err:
        await send(http, "sms", {"sms_providers": ["twilio"]}, "+84905111222")
    assert err.value.transient
