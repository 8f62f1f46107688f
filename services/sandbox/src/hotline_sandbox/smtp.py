"""The sandbox's SMTP server (aiosmtpd): checks AUTH and the message, records what it accepts."""

from __future__ import annotations

import asyncio
import hmac
import secrets
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .app import EMAIL, Sandbox
from .faults import FaultKind


class SandboxSmtpHandler:
    """aiosmtpd handler: one recorded message per accepted recipient."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not EMAIL.match(address):
            self.sandbox.store.attempt("smtp", 553, "bad recipient")
            return "553 5.1.3 Bad recipient address syntax"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        store = self.sandbox.store
        fault = self.sandbox.faults.take("smtp")
        if fault is not None:
            store.attempt("smtp", 0, "fault", fault=fault.kind.value)
            if fault.kind == FaultKind.TIMEOUT:
                await self.sandbox.hang(fault)
                return "451 4.4.2 Timeout"
            if fault.kind == FaultKind.CLOSE:
                if server.transport is not None:
                    server.transport.close()
                return "421 4.3.0 Closing connection"
            if fault.kind == FaultKind.RATE_LIMIT:
                return "421 4.7.0 Too many messages, try again later"
            if fault.kind == FaultKind.BAD_REQUEST:
                return "550 5.1.1 Mailbox unavailable"
            return "451 4.3.0 Temporary server error"
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode()
        parsed = message_from_bytes(raw, policy=policy.default)
        if not isinstance(parsed, EmailMessage) or not parsed["Subject"] or not parsed["From"]:
            store.attempt("smtp", 554, "missing headers")
            return "554 5.6.0 Message must have Subject and From headers"
        part = parsed.get_body(preferencelist=("plain", "html"))
        text = part.get_content() if part is not None else ""
        message_id = str(parsed["Message-ID"] or f"<{secrets.token_hex(12)}@sandbox>")
        for rcpt in envelope.rcpt_tos:
            store.record(
                provider="smtp",
                channel="email",
                to=rcpt,
                text=str(text).strip(),
                provider_message_id=message_id,
                subject=str(parsed["Subject"]),
                body={"from": envelope.mail_from, "headers": dict(parsed.items())},
            )
        return f"250 2.0.0 OK queued as {message_id}"


def make_authenticator(sandbox: Sandbox) -> Any:
    """AUTH PLAIN/LOGIN with the sandbox's credentials (no TLS needed locally)."""

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        s = sandbox.settings
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == s.smtp_username and hmac.compare_digest(
            auth_data.password, s.smtp_password.encode()
        )
        if not ok:
            sandbox.store.attempt("smtp", 535, "bad credentials")
        return AuthResult(success=ok, handled=False)

    return authenticate


async def start_smtp(sandbox: Sandbox, host: str, port: int) -> asyncio.Server:
    """Serve SMTP in the running event loop; returns the server (port 0 = any free port)."""
    handler = SandboxSmtpHandler(sandbox)
    authenticator = make_authenticator(sandbox)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="sandbox.local",
            auth_required=True,
            auth_require_tls=False,
            authenticator=authenticator,
            loop=loop,
        )

    return await loop.create_server(factory, host=host, port=port)
