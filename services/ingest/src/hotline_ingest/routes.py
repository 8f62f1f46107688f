"""HTTP handlers: read the bounded raw body, verify, parse, hand to the intake, answer.

Every endpoint follows the same order, so a rejection never costs more than it must:
size (Content-Length, before reading) → credentials present → body read with a byte count →
signature over the raw bytes → parse and validate → flood control → dedup → publish → 2xx.
Signature errors answer 401, or 403 where the provider's convention is 403 (Telegram, Twilio,
WhatsApp's verification handshake).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NoReturn

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from hotline import signatures
from hotline.clock import Clock
from hotline.contracts.labels import Channel
from hotline_ingest.intake import FloodPolicy, Intake, IntakeResult, RateLimited, Unavailable
from hotline_ingest.metrics import IGNORED, REJECTED, UNAVAILABLE, Rejection
from hotline_ingest.normalize import EventContext, Invalid, Malformed, Parsed
from hotline_ingest.providers import pbx, telegram, twilio, viber, web, whatsapp, zalo
from hotline_ingest.ratelimit import TokenBucketLimiter
from hotline_ingest.settings import IngestSettings

# --------------------------------------------------------------------------- response models


class Ack(BaseModel):
    """A provider webhook was handled: published, already known, or acknowledged only."""

    status: Literal["ok"] = "ok"
    accepted: int
    duplicates: int
    ignored: int
    flood_limited: int = Field(
        default=0,
        description="of `accepted`: items from a sender over its rate, published flagged "
        "`flood_limited` (present only when not 0)",
    )


class Receipt(BaseModel):
    """A web report or a desk summary is in the pipeline (202) under this event id."""

    status: Literal["accepted", "duplicate"]
    event_id: str | None


class ErrorBody(BaseModel):
    error: str
    detail: str
    errors: list[dict[str, Any]] | None = None


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "body is not valid JSON / form / UTF-8",
        401: "missing or wrong signature or token",
        403: "missing or wrong signature (this provider's convention)",
        413: "body larger than the configured limit",
        422: "a field is missing or invalid (named in the answer)",
        429: "too many requests from this client; see Retry-After",
        503: "broker or dedup store unavailable; the delivery is not confirmed (a record already "
        "queued may still reach the topic): retry after Retry-After, a retry of the same "
        "delivery is deduplicated",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}


def _json_error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(model: type[BaseModel], header: str | None = None) -> dict[str, Any]:
    """OpenAPI request body (and signature header) of a handler that reads the raw bytes itself:
    FastAPI cannot see either, because both are checked by hand (see app.py)."""
    return _body("application/json", model, header)


def form_body(model: type[BaseModel], header: str | None = None) -> dict[str, Any]:
    return _body("application/x-www-form-urlencoded", model, header)


def _body(content_type: str, model: type[BaseModel], header: str | None) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    extra: dict[str, Any] = {
        "requestBody": {"required": True, "content": {content_type: {"schema": schema}}}
    }
    if header is not None:
        # Read from request.headers rather than declared as a FastAPI Header parameter: the
        # dependency machinery costs ~10% of a request, and a missing header must be our 401
        # or 403 (counted), not FastAPI's 422.
        extra["parameters"] = [
            {
                "name": header,
                "in": "header",
                "required": False,
                "description": "the provider's signature (a request without it is refused)",
                "schema": {"type": "string"},
            }
        ]
    return extra


DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (
    zalo.ZaloEvent,
    viber.ViberCallback,
    whatsapp.WaNotification,
    telegram.TgUpdate,
    twilio.TwilioSmsForm,
    twilio.TwilioVoiceForm,
    pbx.PbxCallFact,
    web.WebReport,
    web.CallSummary,
)


# --------------------------------------------------------------------------- helpers


def reject(
    channel: Channel,
    reason: Rejection,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
) -> NoReturn:
    REJECTED.labels(channel.value, reason.value).inc()
    raise HTTPException(status, detail, headers)


@dataclass
class Deps:
    settings: IngestSettings
    intake: Intake
    clock: Clock
    new_id: Callable[[], str]
    web_limiter: TokenBucketLimiter
    desk_limiter: TokenBucketLimiter


class Handlers:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.limit = deps.settings.body_limit_bytes

    def precheck(self, request: Request, channel: Channel) -> None:
        """413 on a declared length over the limit, before a byte of the body is read."""
        declared = request.headers.get("content-length")
        if declared is None:
            return
        if not declared.isascii() or not declared.isdigit():
            reject(channel, Rejection.MALFORMED, 400, "Content-Length is not a number")
        if int(declared) > self.limit:
            reject(channel, Rejection.TOO_LARGE, 413, f"body over {self.limit} bytes")

    async def body(self, request: Request, channel: Channel) -> bytes:
        """The raw body, counted as it streams in (a chunked body has no Content-Length)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.limit:
                    reject(channel, Rejection.TOO_LARGE, 413, f"body over {self.limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise HTTPException(400, "client disconnected before sending the body") from None
        return b"".join(chunks)

    def context(self, body: bytes) -> EventContext:
        return EventContext.for_body(body, self.deps.clock.now(), self.deps.new_id)

    def parse(self, channel: Channel, fn: Callable[[EventContext], Parsed], body: bytes) -> Parsed:
        try:
            return fn(self.context(body))
        except Malformed as exc:
            reject(channel, Rejection.MALFORMED, 400, str(exc))
        except Invalid as exc:
            REJECTED.labels(channel.value, Rejection.MALFORMED.value).inc()
            raise RequestValidationError(exc.errors) from None

    async def submit(self, channel: Channel, parsed: Parsed, flood: FloodPolicy) -> IntakeResult:
        try:
            result = await self.deps.intake.submit(channel.value, parsed.events, flood)
        except Unavailable as exc:
            UNAVAILABLE.labels(channel.value).inc()
            raise HTTPException(
                503,
                # Not "nothing was published": after a broker timeout the producer may still
                # deliver the queued record. The retry reuses the claim's event id (dedup.py).
                f"{exc.dependency} unavailable; not confirmed by the broker: retry later "
                "(a retry of the same delivery is deduplicated)",
                {"Retry-After": str(self.settings.retry_after_s)},
            ) from None
        except RateLimited as exc:
            raise HTTPException(
                429,
                "too many reports from this sender; retry later",
                {"Retry-After": self.deps.web_limiter.retry_after(exc.retry_after_s)},
            ) from None
        for label in parsed.ignored:
            IGNORED.labels(channel.value, label).inc()
        return result

    async def provider(
        self, channel: Channel, fn: Callable[[EventContext], Parsed], body: bytes
    ) -> Response:
        parsed = self.parse(channel, fn, body)
        result = await self.submit(channel, parsed, FloodPolicy.FLAG)
        answer: dict[str, Any] = {
            "status": "ok",
            "accepted": len(result.accepted),
            "duplicates": len(result.duplicates),
            "ignored": len(parsed.ignored),
        }
        if result.flood_limited:
            answer["flood_limited"] = result.flood_limited
        # Encoded here, not by FastAPI from the response model: same JSON, a third of the cost.
        return Response(orjson.dumps(answer), media_type="application/json")

    async def signed_provider(
        self,
        request: Request,
        channel: Channel,
        header: str,
        verify: Callable[[str, bytes], bool],
        parse: Callable[[bytes, EventContext], Parsed],
        bad_signature: str = "signature does not match",
    ) -> Response:
        """A provider webhook signed over its raw body, answered 401 when unsigned or forged.

        `verify` gets the header and the raw body; a Malformed it raises (the signed fields
        cannot be read) is a 400.
        """
        self.precheck(request, channel)
        signature = request.headers.get(header)
        if not signature:
            reject(channel, Rejection.MISSING_SIGNATURE, 401, f"{header} missing")
        body = await self.body(request, channel)
        try:
            genuine = verify(signature, body)
        except Malformed as exc:
            reject(channel, Rejection.MALFORMED, 400, str(exc))
        if not genuine:
            reject(channel, Rejection.BAD_SIGNATURE, 401, bad_signature)
        return await self.provider(channel, lambda ctx: parse(body, ctx), body)

    def twilio_url(self, request: Request) -> str:
        """The URL Twilio signed: rebuilt on the public base URL when one is configured."""
        base = self.settings.public_base_url
        if base is None:
            return str(request.url)
        query = request.url.query
        return base + request.url.path + (f"?{query}" if query else "")


DESK_BEARER = HTTPBearer(auto_error=False, description="a call-taker's desk token")


def make_router(deps: Deps) -> APIRouter:
    h = Handlers(deps)
    s = deps.settings
    router = APIRouter()

    # ------------------------------------------------------------------ Zalo

    @router.post(
        "/webhooks/zalo",
        tags=["webhooks"],
        response_model=Ack,
        summary="Zalo Official Account events",
        description="Signed with `X-ZEvent-Signature: mac=<sha256 hex>` "
        "(app_id + body + timestamp + OA secret key). `user_send_*` events are published; "
        "receipts, follow/unfollow and the rest are acknowledged and counted.",
        openapi_extra=json_body(zalo.ZaloEvent, signatures.ZALO_HEADER),
        responses=_responses(400, 401, 413, 422, 503),
    )
    async def zalo_events(request: Request) -> Response:
        def verify(signature: str, body: bytes) -> bool:
            signed = zalo.signed_fields(body)  # Malformed: a 400
            return signed is not None and signatures.verify_zalo(
                signature,
                app_id=signed[0],
                body=body,
                timestamp=signed[1],
                oa_secret_key=s.zalo_oa_secret_key.get_secret_value(),
            )

        return await h.signed_provider(
            request, Channel.ZALO, signatures.ZALO_HEADER, verify, zalo.parse
        )

    # ------------------------------------------------------------------ Viber

    @router.post(
        "/webhooks/viber",
        tags=["webhooks"],
        response_model=Ack,
        summary="Viber bot callbacks",
        description="Signed with `X-Viber-Content-Signature` (hex HMAC-SHA256 of the body with "
        "the bot token). `message` events are published; the `webhook` handshake during "
        "set_webhook and delivery/seen/subscription events are answered 200 and counted.",
        openapi_extra=json_body(viber.ViberCallback, signatures.VIBER_HEADER),
        responses=_responses(400, 401, 413, 422, 503),
    )
    async def viber_callbacks(request: Request) -> Response:
        def verify(signature: str, body: bytes) -> bool:
            return signatures.verify_viber(signature, body, s.viber_auth_token.get_secret_value())

        return await h.signed_provider(
            request, Channel.VIBER, signatures.VIBER_HEADER, verify, viber.parse
        )

    # ------------------------------------------------------------------ WhatsApp

    @router.get(
        "/webhooks/whatsapp",
        tags=["webhooks"],
        summary="WhatsApp webhook verification handshake",
        description="Meta calls this when the webhook is configured: the bare `hub.challenge` "
        "is echoed when `hub.mode=subscribe` and the verify token matches, else 403.",
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/plain": {}}},
            # Spelled out: with a plain-text response class FastAPI would label these text/plain.
            403: _json_error("not a subscription request, or the verify token is wrong"),
            422: _json_error("a query parameter is invalid (named in the answer)"),
        },
    )
    async def whatsapp_verify(
        mode: Annotated[str | None, Query(alias="hub.mode")] = None,
        challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=512)] = None,
        verify_token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    ) -> PlainTextResponse:
        ch = Channel.WHATSAPP
        expected = s.whatsapp_verify_token.get_secret_value()
        if mode != "subscribe" or challenge is None or verify_token is None:
            reject(ch, Rejection.UNAUTHORIZED, 403, "not a subscription verification")
        if not signatures.constant_time_equals(verify_token, expected):
            reject(ch, Rejection.UNAUTHORIZED, 403, "verify token does not match")
        IGNORED.labels(ch.value, "verification").inc()
        return PlainTextResponse(challenge)

    @router.post(
        "/webhooks/whatsapp",
        tags=["webhooks"],
        response_model=Ack,
        summary="WhatsApp Cloud API notifications",
        description="Signed with `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 with the App "
        "Secret). Every message of every entry and change is published once; `statuses` of "
        "outbound messages are acknowledged and counted.",
        openapi_extra=json_body(whatsapp.WaNotification, signatures.WHATSAPP_HEADER),
        responses=_responses(400, 401, 413, 422, 503),
    )
    async def whatsapp_notifications(request: Request) -> Response:
        def verify(signature: str, body: bytes) -> bool:
            secret = s.whatsapp_app_secret.get_secret_value()
            return signatures.verify_whatsapp(signature, body, secret)

        return await h.signed_provider(
            request, Channel.WHATSAPP, signatures.WHATSAPP_HEADER, verify, whatsapp.parse
        )

    # ------------------------------------------------------------------ Telegram

    @router.post(
        "/webhooks/telegram",
        tags=["webhooks"],
        response_model=Ack,
        summary="Telegram bot updates",
        description="Authenticated by `X-Telegram-Bot-Api-Secret-Token` (the setWebhook "
        "secret_token); 403 when it is missing or wrong, as Telegram expects.",
        openapi_extra=json_body(telegram.TgUpdate, signatures.TELEGRAM_HEADER),
        responses=_responses(400, 403, 413, 422, 503),
    )
    async def telegram_updates(request: Request) -> Response:
        # Not h.signed_provider: the secret token covers no body, so it is checked before the
        # body is read, and Telegram expects 403.
        ch = Channel.TELEGRAM
        h.precheck(request, ch)
        x_telegram_bot_api_secret_token = request.headers.get(signatures.TELEGRAM_HEADER)
        if not x_telegram_bot_api_secret_token:
            reject(ch, Rejection.MISSING_SIGNATURE, 403, f"{signatures.TELEGRAM_HEADER} missing")
        if not signatures.verify_telegram(
            x_telegram_bot_api_secret_token, s.telegram_secret_token.get_secret_value()
        ):
            reject(ch, Rejection.BAD_SIGNATURE, 403, "secret token does not match")
        body = await h.body(request, ch)
        return await h.provider(ch, lambda ctx: telegram.parse(body, ctx), body)

    # ------------------------------------------------------------------ Twilio

    async def twilio_callback(
        request: Request,
        ch: Channel,
        parse: Callable[[list[tuple[str, str]], EventContext], Parsed],
    ) -> Response:
        """Signed over the URL and every form pair (403, Twilio's convention); answers TwiML."""
        h.precheck(request, ch)
        signature = request.headers.get(signatures.TWILIO_HEADER)
        if not signature:
            reject(ch, Rejection.MISSING_SIGNATURE, 403, f"{signatures.TWILIO_HEADER} missing")
        body = await h.body(request, ch)
        try:
            pairs = twilio.form_pairs(body)
        except Malformed as exc:
            reject(ch, Rejection.MALFORMED, 400, str(exc))
        if not signatures.verify_twilio(
            signature, h.twilio_url(request), pairs, s.twilio_auth_token.get_secret_value()
        ):
            reject(ch, Rejection.BAD_SIGNATURE, 403, "signature does not match")
        parsed = h.parse(ch, lambda ctx: parse(pairs, ctx), body)
        await h.submit(ch, parsed, FloodPolicy.FLAG)
        return Response(twilio.TWIML_EMPTY, media_type="text/xml")

    twiml: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/xml": {}}, "description": "empty TwiML"}
    }

    @router.post(
        "/webhooks/twilio/sms",
        tags=["webhooks"],
        summary="Twilio inbound SMS",
        description="Twilio's form post, signed with `X-Twilio-Signature` over the public URL "
        "and every parameter (set INGEST_PUBLIC_BASE_URL behind a proxy). Answers empty TwiML.",
        openapi_extra=form_body(twilio.TwilioSmsForm, signatures.TWILIO_HEADER),
        response_class=Response,
        responses={**twiml, **_responses(400, 403, 413, 422, 503)},
    )
    async def twilio_sms(request: Request) -> Response:
        return await twilio_callback(request, Channel.SMS, twilio.parse_sms)

    @router.post(
        "/webhooks/twilio/voice",
        tags=["webhooks"],
        summary="Twilio Voice status, dial-action, recording and transcription callbacks",
        description="Missed calls (busy/no-answer/failed/canceled), answered calls and "
        "voicemails (recording, transcript) become call events; progress callbacks are "
        "acknowledged. Status callbacks only: this URL does not drive the call (no IVR).",
        openapi_extra=form_body(twilio.TwilioVoiceForm, signatures.TWILIO_HEADER),
        response_class=Response,
        responses={**twiml, **_responses(400, 403, 413, 422, 503)},
    )
    async def twilio_voice(request: Request) -> Response:
        return await twilio_callback(request, Channel.VOICE, twilio.parse_voice)

    # ------------------------------------------------------------------ PBX

    @router.post(
        "/webhooks/pbx",
        tags=["webhooks"],
        response_model=Ack,
        summary="Call facts from a PBX adapter (Asterisk, FreeSWITCH)",
        description="Signed with `X-Hotline-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "
        "'<t>.<body>'>` (hotline.signatures.pbx_signature); refused outside the replay window.",
        openapi_extra=json_body(pbx.PbxCallFact, signatures.PBX_HEADER),
        responses=_responses(400, 401, 413, 422, 503),
    )
    async def pbx_calls(request: Request) -> Response:
        def verify(signature: str, body: bytes) -> bool:
            return signatures.verify_pbx(
                signature,
                body,
                s.pbx_secret.get_secret_value(),
                now=deps.clock.now().timestamp(),
                tolerance_s=s.pbx_tolerance_s,
            )

        return await h.signed_provider(
            request,
            Channel.VOICE,
            signatures.PBX_HEADER,
            verify,
            pbx.parse,
            bad_signature="signature does not match or is stale",
        )

    # ------------------------------------------------------------------ web form

    @router.post(
        "/webhooks/web",
        tags=["public"],
        summary="Report from the public web form",
        description="Unauthenticated, rate-limited per client address (429 with Retry-After): "
        "the `X-Forwarded-For` client when the peer is a proxy in INGEST_TRUSTED_PROXIES, else "
        "the peer. Send a `submission_id` so a resubmitted form is not a second report.",
        status_code=202,
        response_model=Receipt,
        openapi_extra=json_body(web.WebReport),
        responses=_responses(400, 413, 422, 429, 503),
    )
    async def web_report(request: Request) -> Response:
        ch = Channel.WEB
        h.precheck(request, ch)
        # uvicorn already replaced a trusted proxy's address with its X-Forwarded-For client
        # (hotline.service.uvicorn_config, INGEST_TRUSTED_PROXIES).
        client = request.client.host if request.client else "unknown"
        wait = deps.web_limiter.try_acquire(client)
        if wait > 0:
            reject(
                ch,
                Rejection.RATE_LIMITED,
                429,
                "too many reports from this address; retry later",
                {"Retry-After": deps.web_limiter.retry_after(wait)},
            )
        body = await h.body(request, ch)
        parsed = h.parse(ch, lambda ctx: web.parse_web(body, ctx), body)
        return _receipt(await h.submit(ch, parsed, FloodPolicy.REJECT))

    # ------------------------------------------------------------------ desk

    @router.post(
        "/desk/call-summaries",
        tags=["desk"],
        summary="A call-taker logs the summary of a phone call",
        description="Bearer token of a call-taker (INGEST_DESK_TOKENS); the event records who "
        "logged it. Send a `summary_id` so a resubmission is not a second report.",
        status_code=202,
        response_model=Receipt,
        openapi_extra=json_body(web.CallSummary),
        responses=_responses(400, 401, 413, 422, 429, 503),
    )
    async def desk_summary(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(DESK_BEARER)],
    ) -> Response:
        ch = Channel.DESK
        h.precheck(request, ch)
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            reject(ch, Rejection.UNAUTHORIZED, 401, "a bearer token is required", challenge)
        call_taker = _call_taker(s, credentials.credentials)
        if call_taker is None:
            reject(ch, Rejection.UNAUTHORIZED, 401, "unknown token", challenge)
        wait = deps.desk_limiter.try_acquire(call_taker)
        if wait > 0:
            reject(
                ch,
                Rejection.RATE_LIMITED,
                429,
                "too many summaries; retry later",
                {"Retry-After": deps.desk_limiter.retry_after(wait)},
            )
        body = await h.body(request, ch)
        parsed = h.parse(ch, lambda ctx: web.parse_desk(body, ctx, call_taker), body)
        return _receipt(await h.submit(ch, parsed, FloodPolicy.REJECT))

    return router


def _call_taker(settings: IngestSettings, token: str) -> str | None:
    """The call-taker whose token this is. Every token is compared, so timing reveals nothing."""
    found: str | None = None
    for who, secret in settings.desk_tokens.items():
        if signatures.constant_time_equals(token, secret.get_secret_value()):
            found = who
    return found


def _receipt(result: IntakeResult) -> Response:
    """202 with the event id (of this request's event, or of the one published before)."""
    body: dict[str, str | None]
    if result.accepted:
        body = {"status": "accepted", "event_id": result.accepted[0]}
    else:
        body = {
            "status": "duplicate",
            "event_id": result.duplicates[0] if result.duplicates else None,
        }
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")
