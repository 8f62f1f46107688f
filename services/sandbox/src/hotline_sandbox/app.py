"""The sandbox HTTP app: every outbound provider API under one base URL, plus controls.

Provider routes mirror the real paths under a per-provider prefix, check credentials and body
format the way the real provider does, and answer in the provider's own success and error
shapes. Control routes live under `/sandbox/`.

| provider | real endpoint | sandbox path |
|---|---|---|
| Twilio SMS | api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json | /twilio/2010-04-01/... |
| eSMS.vn | rest.esms.vn/MainService.svc/json/SendMultipleMessage_V4_post_json/ | /esms/... |
| Zalo OA cs | openapi.zalo.me/v3.0/oa/message/cs | /zalo/v3.0/oa/message/cs |
| Zalo ZNS | business.openapi.zalo.me/message/template | /zalo-business/message/template |
| Zalo OAuth | oauth.zaloapp.com/v4/oa/access_token | /zalo-oauth/v4/oa/access_token |
| Viber | chatapi.viber.com/pa/send_message | /viber/pa/send_message |
| WhatsApp Cloud | graph.facebook.com/{version}/{phone-number-id}/messages | /graph/... |
| Telegram | api.telegram.org/bot{token}/sendMessage | /telegram/bot{token}/sendMessage |
| signed webhook | (any receiver) | /webhook/{name} |
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from .faults import PROVIDERS, Fault, FaultBoard, FaultKind
from .settings import SandboxSettings
from .store import MessageStore

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
VN_PHONE = re.compile(r"^(84|0)\d{8,10}$")
WA_ID = re.compile(r"^[1-9]\d{7,14}$")
ZALO_ID = re.compile(r"^\d{6,25}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SAFE_HEADERS = (
    "content-type",
    "user-agent",
    "x-hotline-delivery",
    "x-hotline-timestamp",
    "x-hotline-signature",
)


class Problem(Exception):
    """A provider-shaped error answer."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


class ClosingResponse(Response):
    """Starts an answer, sends part of it, then drops the connection (a provider crash)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
        raise ConnectionAbortedError("sandbox fault: connection closed mid-answer")


class FaultRequest(BaseModel):
    provider: str
    kind: FaultKind
    count: int = Field(default=1, ge=1, le=10_000)
    retry_after: float = Field(default=1.0, ge=0)
    hang_s: float | None = Field(default=None, ge=0)


class SessionRequest(BaseModel):
    wa_id: str


class Sandbox:
    """State shared by the HTTP app and the SMTP server."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.store = MessageStore(settings.max_records)
        self.faults = FaultBoard()
        self.zalo_tokens = {settings.zalo_access_token}
        self.zalo_refresh_tokens = {settings.zalo_refresh_token}
        self.whatsapp_sessions: set[str] = set()
        self.whatsapp_enforce_window = settings.whatsapp_enforce_window
        # What Meta and Zalo approved (tests may change them in-process).
        self.whatsapp_templates = dict(settings.whatsapp_approved_templates)
        self.zns_templates = dict(settings.zns_approved_templates)
        self.released = asyncio.Event()

    def inject(
        self,
        provider: str,
        kind: FaultKind | str,
        count: int = 1,
        retry_after: float = 1.0,
        hang_s: float | None = None,
    ) -> Fault:
        """Make `provider` misbehave for its next `count` requests."""
        return self.faults.inject(provider, kind, count, retry_after, hang_s)

    async def hang(self, fault: Fault) -> None:
        """Hold a request open (interrupted when the sandbox stops)."""
        limit = fault.hang_s if fault.hang_s is not None else self.settings.hang_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.released.wait(), limit)


def _headers(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() in SAFE_HEADERS}


async def _json_body(request: Request, store: MessageStore, provider: str) -> dict[str, Any]:
    try:
        return await _parse_json(request)
    except Problem as exc:
        store.attempt(provider, exc.status, "bad body", detail=str(exc.body.get("error")))
        raise


async def _form_body(request: Request, store: MessageStore, provider: str) -> dict[str, str]:
    try:
        return await _parse_form(request)
    except Problem as exc:
        store.attempt(provider, exc.status, "bad body", detail=str(exc.body.get("error")))
        raise


async def _parse_json(request: Request) -> dict[str, Any]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise Problem(400, {"error": "content type must be application/json"})
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise Problem(400, {"error": f"body is not JSON: {exc}"}) from exc
    if not isinstance(body, dict):
        raise Problem(400, {"error": "body must be a JSON object"})
    return body


async def _parse_form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise Problem(400, {"error": "content type must be application/x-www-form-urlencoded"})
    parsed = parse_qs((await request.body()).decode("utf-8"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _new_id(prefix: str, nbytes: int = 16) -> str:
    return prefix + secrets.token_hex(nbytes)


def create_app(sandbox: Sandbox) -> FastAPI:
    """The sandbox's FastAPI app (provider routes + `/sandbox/` controls)."""
    s = sandbox.settings
    store = sandbox.store
    app = FastAPI(
        title="Hotline provider sandbox",
        description="Plays every outbound provider locally; dev and tests only.",
        version="0.1.0",
    )
    app.state.sandbox = sandbox

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    async def faulted(
        provider: str,
        shapes: dict[FaultKind, Problem] | Callable[[Fault], Problem | None] | None = None,
    ) -> Response | None:
        """Apply the next queued fault for `provider`, or None to answer normally."""
        fault = sandbox.faults.take(provider)
        if fault is None:
            return None
        status = 0
        try:
            if fault.kind == FaultKind.TIMEOUT:
                await sandbox.hang(fault)
                status = 504
                return JSONResponse({"error": "gateway timeout"}, status_code=504)
            if fault.kind == FaultKind.CLOSE:
                status = 0
                return ClosingResponse()
            if fault.kind == FaultKind.NON_JSON:
                status = 200
                return Response(
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                    media_type="text/html",
                )
            shaped = shapes(fault) if callable(shapes) else (shapes or {}).get(fault.kind)
            if shaped is not None:
                status = shaped.status
                return JSONResponse(shaped.body, status_code=shaped.status, headers=shaped.headers)
            if fault.kind == FaultKind.RATE_LIMIT:
                status = 429
                return JSONResponse(
                    {"error": "too many requests"},
                    status_code=429,
                    headers={"Retry-After": _retry_after(fault.retry_after)},
                )
            if fault.kind == FaultKind.BAD_REQUEST:
                status = 400
                return JSONResponse({"error": "bad request"}, status_code=400)
            status = 500
            return JSONResponse({"error": "internal server error"}, status_code=500)
        finally:
            store.attempt(provider, status, "fault", fault=fault.kind.value)

    # ------------------------------------------------------------------ Twilio
    @app.post("/twilio/2010-04-01/Accounts/{account_sid}/Messages.json", tags=["providers"])
    async def twilio_send(account_sid: str, request: Request) -> Response:
        def err(status: int, code: int, message: str) -> Problem:
            return Problem(
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )

        shaped = {
            FaultKind.ERROR_500: err(500, 20500, "Internal Server Error"),
            FaultKind.BAD_REQUEST: err(400, 21211, "The 'To' number is not a valid phone number."),
        }
        if (answer := await faulted("twilio", shaped)) is not None:
            return answer
        user, password = _basic_auth(request)
        if user != s.twilio_account_sid or not hmac.compare_digest(
            password.encode(), s.twilio_auth_token.encode()
        ):
            store.attempt("twilio", 401, "unauthorized")
            raise err(401, 20003, "Authenticate")
        if account_sid != user:
            store.attempt("twilio", 403, "wrong account")
            raise err(403, 20003, "Account in path does not match credentials")
        form = await _form_body(request, store, "twilio")
        to, body = form.get("To", ""), form.get("Body", "")
        if not E164.match(to):
            store.attempt("twilio", 400, "invalid To")
            raise err(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            store.attempt("twilio", 400, "no From")
            raise err(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        if not body or len(body) > 1600:
            store.attempt("twilio", 400, "bad Body")
            raise err(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        sid = _new_id("SM")
        store.record(
            provider="twilio",
            channel="sms",
            to=to,
            text=body,
            provider_message_id=sid,
            body=dict(form),
            headers=_headers(request),
        )
        return JSONResponse(
            {
                "sid": sid,
                "account_sid": account_sid,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": body,
                "status": "queued",
                "num_segments": str(max(1, (len(body) + 66) // 67)),
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            },
            status_code=201,
        )

    # ------------------------------------------------------------------ eSMS.vn
    @app.post("/esms/MainService.svc/json/SendMultipleMessage_V4_post_json/", tags=["providers"])
    async def esms_send(request: Request) -> Response:
        shaped = {
            FaultKind.BAD_REQUEST: Problem(
                200, {"CodeResult": "104", "ErrorMessage": "Brandname chưa được đăng ký"}
            )
        }
        if (answer := await faulted("esms", shaped)) is not None:
            return answer
        body = await _json_body(request, store, "esms")
        if body.get("ApiKey") != s.esms_api_key or body.get("SecretKey") != s.esms_secret_key:
            store.attempt("esms", 200, "unauthorized")
            return JSONResponse({"CodeResult": "101", "ErrorMessage": "Sai ApiKey/SecretKey"})
        phone, content = str(body.get("Phone", "")), str(body.get("Content", ""))
        sms_type = str(body.get("SmsType", ""))
        if not VN_PHONE.match(phone):
            store.attempt("esms", 200, "bad phone")
            return JSONResponse({"CodeResult": "118", "ErrorMessage": "Số điện thoại không hợp lệ"})
        if not content or sms_type not in ("2", "8"):
            store.attempt("esms", 200, "bad params")
            return JSONResponse({"CodeResult": "99", "ErrorMessage": "Thiếu tham số"})
        if sms_type == "2" and not body.get("Brandname"):
            store.attempt("esms", 200, "no brandname")
            return JSONResponse({"CodeResult": "104", "ErrorMessage": "Thiếu Brandname"})
        sms_id = _new_id("", 12)
        store.record(
            provider="esms",
            channel="sms",
            to=phone,
            text=content,
            provider_message_id=sms_id,
            body={k: v for k, v in body.items() if k not in ("ApiKey", "SecretKey")},
            headers=_headers(request),
        )
        return JSONResponse({"CodeResult": "100", "CountRegenerate": 0, "SMSID": sms_id})

    # ------------------------------------------------------------------ Zalo
    def zalo_shapes() -> dict[FaultKind, Problem]:
        return {
            FaultKind.TOKEN_EXPIRED: Problem(
                200, {"error": -216, "message": "Access token is invalid"}
            ),
            FaultKind.BAD_REQUEST: Problem(
                200, {"error": -213, "message": "User has not interacted with the OA"}
            ),
        }

    def zalo_auth(request: Request, provider: str) -> None:
        token = request.headers.get("access_token", "")
        if token not in sandbox.zalo_tokens:
            store.attempt(provider, 200, "invalid token")
            raise Problem(200, {"error": -216, "message": "Access token is invalid"})

    @app.post("/zalo/v3.0/oa/message/cs", tags=["providers"])
    async def zalo_cs(request: Request) -> Response:
        if (answer := await faulted("zalo", zalo_shapes())) is not None:
            return answer
        zalo_auth(request, "zalo")
        body = await _json_body(request, store, "zalo")
        user_id = str((body.get("recipient") or {}).get("user_id", ""))
        text = (body.get("message") or {}).get("text")
        if not ZALO_ID.match(user_id):
            store.attempt("zalo", 200, "bad user_id")
            raise Problem(200, {"error": -201, "message": "user_id is invalid"})
        if not isinstance(text, str) or not text or len(text) > 2000:
            store.attempt("zalo", 200, "bad text")
            raise Problem(200, {"error": -201, "message": "message.text is invalid"})
        msg_id = _new_id("", 16)
        store.record(
            provider="zalo",
            channel="zalo",
            to=user_id,
            text=text,
            provider_message_id=msg_id,
            body=body,
            headers=_headers(request),
        )
        return JSONResponse(
            {"error": 0, "message": "Success", "data": {"message_id": msg_id, "user_id": user_id}}
        )

    @app.post("/zalo-business/message/template", tags=["providers"])
    async def zalo_zns(request: Request) -> Response:
        if (answer := await faulted("zns", zalo_shapes())) is not None:
            return answer
        zalo_auth(request, "zns")
        body = await _json_body(request, store, "zns")
        phone = str(body.get("phone", ""))
        data = body.get("template_data")
        if not re.match(r"^84\d{9,10}$", phone):
            store.attempt("zns", 200, "bad phone")
            raise Problem(200, {"error": -108, "message": "Phone number is invalid"})
        keys = sandbox.zns_templates.get(str(body.get("template_id") or ""))
        if keys is None:
            store.attempt("zns", 200, "unknown template")
            raise Problem(200, {"error": -109, "message": "Template ID is invalid"})
        if not isinstance(data, dict) or set(data) != set(keys):
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            store.attempt("zns", 200, "bad template data", detail=f"{got} for {sorted(keys)}")
            raise Problem(
                200,
                {
                    "error": -112,
                    "message": f"Template data is invalid: the template takes {sorted(keys)}",
                },
            )
        msg_id = _new_id("", 16)
        store.record(
            provider="zns",
            channel="zalo",
            to=phone,
            text=" | ".join(f"{k}={v}" for k, v in data.items()),
            provider_message_id=msg_id,
            kind="template",
            body=body,
            headers=_headers(request),
        )
        return JSONResponse(
            {
                "error": 0,
                "message": "Success",
                "data": {
                    "msg_id": msg_id,
                    "sent_time": str(int(time.time() * 1000)),
                    "quota": {"dailyQuota": "500", "remainingQuota": "499"},
                },
            }
        )

    @app.post("/zalo-oauth/v4/oa/access_token", tags=["providers"])
    async def zalo_refresh(request: Request) -> Response:
        if (answer := await faulted("zalo_oauth")) is not None:
            return answer
        if not hmac.compare_digest(
            request.headers.get("secret_key", "").encode(), s.zalo_app_secret.encode()
        ):
            store.attempt("zalo_oauth", 200, "bad secret_key")
            return JSONResponse({"error": -14014, "error_name": "Invalid secret key"})
        form = await _form_body(request, store, "zalo_oauth")
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("app_id") != s.zalo_app_id
            or form.get("refresh_token") not in sandbox.zalo_refresh_tokens
        ):
            store.attempt("zalo_oauth", 200, "bad refresh")
            return JSONResponse({"error": -14002, "error_name": "Invalid refresh token"})
        # A refresh token is single-use at Zalo: the caller must store the new one.
        sandbox.zalo_refresh_tokens.discard(form["refresh_token"])
        access, refresh = _new_id("dev-zalo-at-"), _new_id("dev-zalo-rt-")
        sandbox.zalo_tokens.add(access)
        sandbox.zalo_refresh_tokens.add(refresh)
        store.attempt("zalo_oauth", 200, "refreshed")
        return JSONResponse(
            {"access_token": access, "refresh_token": refresh, "expires_in": "90000"}
        )

    # ------------------------------------------------------------------ Viber
    @app.post("/viber/pa/send_message", tags=["providers"])
    async def viber_send(request: Request) -> Response:
        shaped = {
            FaultKind.RATE_LIMIT: Problem(200, {"status": 12, "status_message": "tooManyRequests"}),
            FaultKind.BAD_REQUEST: Problem(
                200, {"status": 6, "status_message": "receiverNotSubscribed"}
            ),
        }
        if (answer := await faulted("viber", shaped)) is not None:
            return answer
        if not hmac.compare_digest(
            request.headers.get("X-Viber-Auth-Token", "").encode(), s.viber_auth_token.encode()
        ):
            store.attempt("viber", 200, "invalid auth token")
            return JSONResponse({"status": 2, "status_message": "invalidAuthToken"})
        raw = await request.body()
        if len(raw) > 30 * 1024:
            store.attempt("viber", 200, "too large")
            return JSONResponse({"status": 3, "status_message": "badData: request too large"})
        body = await _json_body(request, store, "viber")
        sender = body.get("sender") or {}
        receiver, text = str(body.get("receiver", "")), body.get("text")
        problems = []
        if not receiver:
            problems.append("receiver")
        if body.get("type") != "text" or not isinstance(text, str) or not text:
            problems.append("type/text")
        if not isinstance(sender.get("name"), str) or not 0 < len(sender["name"]) <= 28:
            problems.append("sender.name")
        if len(str(body.get("tracking_data", ""))) > 4000:
            problems.append("tracking_data")
        if problems:
            store.attempt("viber", 200, "bad data")
            return JSONResponse({"status": 3, "status_message": f"badData: {', '.join(problems)}"})
        token = str(secrets.randbits(63))
        store.record(
            provider="viber",
            channel="viber",
            to=receiver,
            text=str(text),
            provider_message_id=token,
            body=body,
            headers=_headers(request),
        )
        # Viber's message_token is a 64-bit integer on the wire.
        return JSONResponse(
            {
                "status": 0,
                "status_message": "ok",
                "message_token": int(token),
                "chat_hostname": "SN-CHAT-05_",
            }
        )

    # ------------------------------------------------------------------ WhatsApp Cloud
    def graph_error(
        status: int,
        code: int,
        message: str,
        kind: str = "OAuthException",
        details: str | None = None,
    ) -> Problem:
        error: dict[str, Any] = {"message": message, "type": kind, "code": code}
        if details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": details}
        error["fbtrace_id"] = secrets.token_urlsafe(12)
        return Problem(status, {"error": error})

    def check_template(template: dict[str, Any]) -> list[str]:
        """The parameters of an approved template, sent as WhatsApp expects; else its error."""
        name = template.get("name")
        language_field = template.get("language")
        language = language_field.get("code") if isinstance(language_field, dict) else None
        if not name or not language:
            store.attempt("whatsapp", 400, "bad template")
            raise graph_error(
                400,
                131008,
                "(#131008) Required parameter is missing",
                details="template name and language code are required",
            )
        approved = sandbox.whatsapp_templates.get(str(name))
        if approved is None or language not in approved.languages:
            store.attempt("whatsapp", 404, "unknown template", detail=f"{name}/{language}")
            raise graph_error(
                404,
                132001,
                "(#132001) Template name does not exist in the translation",
                details=f"template name ({name}) does not exist in {language}",
            )
        components = template.get("components") or []
        if not isinstance(components, list) or not all(
            isinstance(c, dict) and isinstance(c.get("parameters") or [], list) for c in components
        ):
            store.attempt("whatsapp", 400, "bad template")
            raise graph_error(400, 100, "(#100) Invalid parameter", details="template.components")
        sent: dict[str, list[Any]] = {"body": []}
        for component in components:
            sent.setdefault(str(component.get("type")), []).extend(
                component.get("parameters") or []
            )
        for part, params in sent.items():
            expected = approved.params if part == "body" else 0  # our templates: a body only
            if len(params) != expected:
                store.attempt("whatsapp", 400, "template parameter count", detail=f"{name}: {part}")
                raise graph_error(
                    400,
                    132000,
                    "(#132000) Number of parameters does not match the expected number of params",
                    details=(
                        f"{part}: number of localizable_params ({len(params)}) does not match "
                        f"the expected number of params ({expected})"
                    ),
                )
        texts = [str(p.get("text") or "") if isinstance(p, dict) else "" for p in sent["body"]]
        if not all(texts):
            store.attempt("whatsapp", 400, "empty template parameter", detail=str(name))
            raise graph_error(
                400,
                131008,
                "(#131008) Required parameter is missing",
                details="Parameter of type text is missing text value",
            )
        return texts

    @app.post("/graph/{version}/{phone_number_id}/messages", tags=["providers"])
    async def whatsapp_send(version: str, phone_number_id: str, request: Request) -> Response:
        shaped = {
            FaultKind.RATE_LIMIT: graph_error(400, 130429, "Rate limit hit"),
            FaultKind.BAD_REQUEST: graph_error(400, 131026, "Message undeliverable"),
        }
        if (answer := await faulted("whatsapp", shaped)) is not None:
            return answer
        if not re.match(r"^v\d+\.\d+$", version):
            store.attempt("whatsapp", 400, "bad version")
            raise graph_error(400, 2500, f"Unknown path components: /{version}")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not hmac.compare_digest(
            auth[7:].encode(), s.whatsapp_token.encode()
        ):
            store.attempt("whatsapp", 401, "bad token")
            raise graph_error(401, 190, "Invalid OAuth access token.")
        if phone_number_id != s.whatsapp_phone_number_id:
            store.attempt("whatsapp", 400, "unknown phone number id")
            raise graph_error(400, 100, "Unsupported post request.", "GraphMethodException")
        body = await _json_body(request, store, "whatsapp")
        to, kind = str(body.get("to", "")), body.get("type", "text")
        if body.get("messaging_product") != "whatsapp" or not WA_ID.match(to):
            store.attempt("whatsapp", 400, "bad params")
            raise graph_error(400, 100, "Invalid parameter", "OAuthException")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text or len(text) > 4096:
                store.attempt("whatsapp", 400, "bad text")
                raise graph_error(400, 100, "Param text['body'] is invalid")
            if sandbox.whatsapp_enforce_window and to not in sandbox.whatsapp_sessions:
                store.attempt("whatsapp", 400, "outside 24h window")
                raise graph_error(
                    400,
                    131047,
                    "Re-engagement message: more than 24 hours have passed since the "
                    "recipient last replied",
                )
            shown = text
        elif kind == "template":
            template = body.get("template") or {}
            params = check_template(template if isinstance(template, dict) else {})
            if any("\n" in p or "\t" in p for p in params):
                store.attempt("whatsapp", 400, "bad template params")
                raise graph_error(400, 132018, "Template parameters contain newlines or tabs")
            shown = " ".join([f"[{template['name']}]", *([" | ".join(params)] if params else [])])
        else:
            store.attempt("whatsapp", 400, "unsupported type")
            raise graph_error(400, 100, f"Unsupported message type {kind}")
        wamid = "wamid." + base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
        store.record(
            provider="whatsapp",
            channel="whatsapp",
            to=to,
            text=shown,
            provider_message_id=wamid,
            kind=str(kind),
            body=body,
            headers=_headers(request),
        )
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}],
            }
        )

    # ------------------------------------------------------------------ Telegram
    @app.post("/telegram/bot{token}/sendMessage", tags=["providers"])
    async def telegram_send(token: str, request: Request) -> Response:
        def telegram_error(code: int, description: str, **extra: Any) -> Problem:
            return Problem(
                code, {"ok": False, "error_code": code, "description": description, **extra}
            )

        def shape(fault: Fault) -> Problem | None:
            if fault.kind == FaultKind.RATE_LIMIT:
                after = max(1, round(fault.retry_after))
                return telegram_error(
                    429,
                    f"Too Many Requests: retry after {after}",
                    parameters={"retry_after": after},
                )
            if fault.kind == FaultKind.BAD_REQUEST:
                return telegram_error(400, "Bad Request: chat not found")
            return None

        if (answer := await faulted("telegram", shape)) is not None:
            return answer
        if not hmac.compare_digest(token.encode(), s.telegram_bot_token.encode()):
            store.attempt("telegram", 401, "bad token")
            raise Problem(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        content_type = request.headers.get("content-type", "")
        body: dict[str, Any] = (
            await _json_body(request, store, "telegram")
            if content_type.startswith("application/json")
            else dict(await _form_body(request, store, "telegram"))
        )
        chat_id, text = body.get("chat_id"), body.get("text")
        if chat_id in (None, ""):
            store.attempt("telegram", 400, "no chat_id")
            raise Problem(
                400,
                {"ok": False, "error_code": 400, "description": "Bad Request: chat_id is empty"},
            )
        if not isinstance(text, str) or not 1 <= len(text) <= 4096:
            store.attempt("telegram", 400, "bad text")
            raise Problem(
                400,
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message text is empty or too long",
                },
            )
        message_id = secrets.randbelow(10**9)
        store.record(
            provider="telegram",
            channel="telegram",
            to=str(chat_id),
            text=text,
            provider_message_id=str(message_id),
            body=body,
            headers=_headers(request),
        )
        return JSONResponse(
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "from": {"id": 123456, "is_bot": True, "first_name": "CA Hotline"},
                    "chat": {"id": chat_id, "type": "private"},
                    "date": int(time.time()),
                    "text": text,
                },
            }
        )

    # ------------------------------------------------------------------ signed webhook
    @app.post("/webhook/{name}", tags=["providers"])
    async def webhook_receive(name: str, request: Request) -> Response:
        if (answer := await faulted("webhook")) is not None:
            return answer
        raw = await request.body()
        timestamp = request.headers.get("X-Hotline-Timestamp", "")
        signature = request.headers.get("X-Hotline-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > s.webhook_max_skew_s:
            store.attempt("webhook", 401, "stale or missing timestamp")
            raise Problem(401, {"error": "stale or missing X-Hotline-Timestamp"})
        expected = (
            "sha256="
            + hmac.new(
                s.webhook_secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            store.attempt("webhook", 401, "bad signature")
            raise Problem(401, {"error": "bad X-Hotline-Signature"})
        body = await _json_body(request, store, "webhook")
        text = body.get("text")
        if not isinstance(text, str) or not body.get("delivery_id"):
            store.attempt("webhook", 400, "bad body")
            raise Problem(400, {"error": "text and delivery_id are required"})
        receipt = _new_id("wh-", 8)
        store.record(
            provider="webhook",
            channel="webhook",
            to=name,
            text=text,
            provider_message_id=receipt,
            subject=body.get("subject"),
            body=body,
            headers=_headers(request),
        )
        return JSONResponse({"ok": True, "id": receipt}, status_code=202)

    # ------------------------------------------------------------------ controls
    @app.get("/sandbox/messages", tags=["sandbox"])
    async def list_messages(
        provider: str | None = None,
        channel: str | None = None,
        to: str | None = None,
        contains: str | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> dict[str, Any]:
        found = store.messages(provider, channel, to, contains, since_id, limit)
        return {"count": len(found), "messages": [m.as_dict() for m in found]}

    @app.get("/sandbox/stats", tags=["sandbox"])
    async def stats() -> dict[str, Any]:
        """Counts only (cheap to poll while thousands of messages arrive)."""
        return store.stats()

    @app.get("/sandbox/messages/wait", tags=["sandbox"])
    async def wait_messages(
        count: int = 1,
        timeout_s: float = 10.0,
        provider: str | None = None,
        channel: str | None = None,
        to: str | None = None,
        contains: str | None = None,
        since_id: int = 0,
    ) -> dict[str, Any]:
        """Long-poll: answers once `count` messages match, or after `timeout_s`."""
        found = await store.wait_for(
            count,
            min(timeout_s, 60.0),
            provider=provider,
            channel=channel,
            to=to,
            contains=contains,
            since_id=since_id,
        )
        return {"count": len(found), "messages": [m.as_dict() for m in found]}

    @app.delete("/sandbox/messages", tags=["sandbox"])
    async def clear_messages() -> dict[str, Any]:
        store.clear()
        return {"cleared": True}

    @app.get("/sandbox/attempts", tags=["sandbox"])
    async def list_attempts(provider: str | None = None) -> dict[str, Any]:
        found = store.attempts(provider)
        return {"count": len(found), "attempts": [a.as_dict() for a in found]}

    @app.get("/sandbox/stream", tags=["sandbox"])
    async def stream(since_id: int = 0) -> StreamingResponse:
        """Server-sent events: one `message` event per accepted message, as it arrives."""

        async def events() -> AsyncIterator[bytes]:
            last = since_id
            yield b": hotline sandbox live view\n\n"
            while not sandbox.released.is_set():
                found = await store.wait_for(1, 15.0, since_id=last)
                if not found:
                    yield b": keep-alive\n\n"
                    continue
                for item in found:
                    last = item.id
                    data = json.dumps(item.as_dict(), ensure_ascii=False)
                    yield f"id: {item.id}\nevent: message\ndata: {data}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/sandbox/faults", tags=["sandbox"])
    async def add_fault(fault: FaultRequest) -> dict[str, Any]:
        if fault.provider not in PROVIDERS:
            raise Problem(422, {"error": f"unknown provider; one of {', '.join(PROVIDERS)}"})
        added = sandbox.inject(
            fault.provider, fault.kind, fault.count, fault.retry_after, fault.hang_s
        )
        return {"added": added.as_dict()}

    @app.get("/sandbox/faults", tags=["sandbox"])
    async def list_faults() -> dict[str, Any]:
        return {"faults": [f.as_dict() for f in sandbox.faults.pending()]}

    @app.delete("/sandbox/faults", tags=["sandbox"])
    async def clear_faults(provider: str | None = None) -> dict[str, Any]:
        sandbox.faults.clear(provider)
        return {"cleared": True}

    @app.post("/sandbox/whatsapp/sessions", tags=["sandbox"])
    async def open_session(session: SessionRequest) -> dict[str, Any]:
        """Mark a WhatsApp user as having written within 24 h (free text allowed)."""
        sandbox.whatsapp_sessions.add(session.wa_id)
        return {"open": sorted(sandbox.whatsapp_sessions)}

    @app.get("/healthz", tags=["sandbox"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "sandbox"}

    return app


def _basic_auth(request: Request) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return user, password


def _retry_after(seconds: float) -> str:
    return str(max(0, round(seconds)))
