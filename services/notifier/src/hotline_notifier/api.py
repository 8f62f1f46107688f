"""The acknowledgement link: `GET /ack/{token}` shows a confirm page, `POST` acknowledges.

Why two steps: chat apps (Zalo, Telegram, Viber) and mail scanners fetch links to build
previews, and a GET that acknowledged would stop the escalation before any human saw the
alert. The GET only checks the token and shows one button; the POST (the button, or any HTTP
client) acknowledges. Answers are HTML for a browser, JSON when the client asks for it.

Rejections (counted in `hotline_notifier_ack_rejected_total{reason}`): forged token → 401,
expired or superseded (the case was reassigned since) → 410, already used → 410 (replayed),
a recipient other than the token's → 403 (wrong_recipient).
"""

from __future__ import annotations

import asyncio
import html
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from hotline.clock import Clock
from hotline.contracts.events import Actor
from hotline.contracts.topics import TopicNames
from hotline.kafka import Outgoing
from hotline.logging import get_logger

from .compose import local_time
from .escalation import EscalationEngine
from .metrics import ACK_REJECTED
from .repository import Repository
from .tokens import AckClaim, AckTokens, RejectReason, TokenRejected

log = get_logger(__name__)

STATUS = {
    RejectReason.FORGED: 401,
    RejectReason.EXPIRED: 410,
    RejectReason.REPLAYED: 410,
    RejectReason.WRONG_RECIPIENT: 403,
}
MESSAGES = {
    RejectReason.FORGED: "Liên kết không hợp lệ. / This link is not valid.",
    RejectReason.EXPIRED: "Liên kết đã hết hạn. / This link has expired.",
    RejectReason.REPLAYED: "Liên kết đã được sử dụng. / This link was already used.",
    RejectReason.WRONG_RECIPIENT: "Liên kết không dành cho đồng chí. / This link is not yours.",
}


class AckLinks:
    def __init__(
        self,
        *,
        tokens: AckTokens,
        repo: Repository,
        engine: EscalationEngine,
        topics: TopicNames,
        clock: Clock,
    ) -> None:
        self.tokens = tokens
        self.repo = repo
        self.engine = engine
        self.topics = topics
        self.clock = clock
        self._background: set[asyncio.Task[None]] = set()

    async def check(self, token: str, recipient: str | None = None) -> AckClaim:
        """Verify a token against the stored alert; raises TokenRejected with the reason."""
        claim = self.tokens.verify(token, self.clock.now())
        if recipient is not None and recipient != claim.recipient_id:
            raise TokenRejected(RejectReason.WRONG_RECIPIENT, "token issued to somebody else")
        state = await self.repo.get_alert(claim.case_id)
        if state is None or claim.cycle != state.cycle:
            raise TokenRejected(RejectReason.EXPIRED, "the alert was superseded")
        if claim.recipient_id not in {r.person_id for r in state.recipients_up_to(claim.level)}:
            raise TokenRejected(RejectReason.WRONG_RECIPIENT, "not a recipient of this alert")
        if await self.repo.get_claim(f"acktok:{claim.nonce}") is not None:
            raise TokenRejected(RejectReason.REPLAYED, "token already used")
        return claim

    async def acknowledge(self, token: str, recipient: str | None) -> tuple[AckClaim, bool]:
        """Use the token once and acknowledge; returns whether this ack was the first."""
        claim = await self.check(token, recipient)
        if not await self.repo.claim(
            f"acktok:{claim.nonce}", self.clock.now(), case_id=claim.case_id
        ):
            raise TokenRejected(RejectReason.REPLAYED, "token already used")
        state = await self.repo.get_alert(claim.case_id)
        role = next(
            (
                r.role.value
                for r in (state.recipients_up_to(claim.level) if state else [])
                if r.person_id == claim.recipient_id
            ),
            "officer",
        )
        result = await self.engine.acknowledge(
            claim.case_id,
            actor=Actor(id=claim.recipient_id, role=role),
            via="link",
            cycle=claim.cycle,
            level=claim.level,
        )
        if result.event is not None:
            out = Outgoing.of(self.topics.case_events, result.event, key=claim.case_id)
            task = asyncio.create_task(self.engine.publish([out]))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            await asyncio.shield(task)
        return claim, result.applied


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:sans-serif;max-width:32em;margin:2em auto'>"
        f"<h1 style='font-size:1.3em'>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _rejected(request: Request, exc: TokenRejected) -> Response:
    ACK_REJECTED.labels(exc.reason.value).inc()
    status = STATUS[exc.reason]
    log.info("ack link rejected", extra={"reason": exc.reason.value, "detail": exc.detail})
    if _wants_json(request):
        return JSONResponse({"error": exc.reason.value, "detail": exc.detail}, status_code=status)
    return _page("Không thể xác nhận", f"<p>{html.escape(MESSAGES[exc.reason])}</p>", status)


def ack_router(links: AckLinks) -> APIRouter:
    router = APIRouter(tags=["acknowledgement"])

    @router.get("/ack/{token}", summary="Show the acknowledgement confirm page")
    async def confirm_page(token: str, request: Request) -> Response:
        try:
            claim = await links.check(token)
        except TokenRejected as exc:
            return _rejected(request, exc)
        state = await links.repo.get_alert(claim.case_id)
        if _wants_json(request):
            return JSONResponse(
                {"case_id": claim.case_id, "recipient_id": claim.recipient_id, "valid": True}
            )
        summary = html.escape(
            f"{claim.case_id} · {state.priority.value if state else ''} · "
            f"{local_time(state.received_at) if state else ''}"
        )
        body = (
            f"<p>Vụ việc / Case: <b>{summary}</b></p>"
            f"<form method='post'><input type='hidden' name='recipient' "
            f"value='{html.escape(claim.recipient_id)}'>"
            "<button type='submit' style='font-size:1.2em;padding:.5em 1em'>"
            "Xác nhận đã nhận / Acknowledge</button></form>"
        )
        return _page("Xác nhận tiếp nhận vụ việc", body)

    @router.post("/ack/{token}", summary="Acknowledge the alert (single use)")
    async def acknowledge(
        token: str,
        request: Request,
        recipient: Annotated[str | None, Form()] = None,
    ) -> Response:
        try:
            claim, first = await links.acknowledge(token, recipient)
        except TokenRejected as exc:
            return _rejected(request, exc)
        payload: dict[str, Any] = {
            "case_id": claim.case_id,
            "acknowledged_by": claim.recipient_id,
            "first": first,
        }
        if _wants_json(request):
            return JSONResponse(payload)
        text = (
            "Đã ghi nhận đồng chí tiếp nhận vụ việc. Cảm ơn đồng chí."
            if first
            else "Vụ việc đã được tiếp nhận trước đó. Cảm ơn đồng chí."
        )
        return _page(f"Đã xác nhận {claim.case_id}", f"<p>{html.escape(text)}</p>")

    return router
