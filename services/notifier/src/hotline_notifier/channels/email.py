"""E-mail over SMTP (aiosmtplib), one connection per message."""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

import aiosmtplib

from .base import Channel, OutboundMessage, SendError, SendResult


class EmailChannel(Channel):
    """Plain-text e-mail; 4xx SMTP replies and lost connections are transient, 5xx permanent."""

    name = "email"
    provider = "smtp"
    max_text = 100_000

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        sender: str,
        start_tls: bool = False,
        use_tls: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.sender = sender
        self.start_tls = start_tls
        self.use_tls = use_tls
        self.timeout_s = timeout_s

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = address
        mail["Subject"] = message.subject
        mail["Date"] = email.utils.formatdate(localtime=False)
        message_id = f"<{message.delivery_id}@hotline.notifier>"
        mail["Message-ID"] = message_id
        mail["X-Hotline-Case"] = message.tracking_id
        mail.set_content(self.clip(message.text))
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.host,
                port=self.port,
                username=self.username or None,
                password=self.password or None,
                start_tls=self.start_tls,
                use_tls=self.use_tls,
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            transient = 400 <= exc.code < 500
            raise SendError(
                f"smtp: {exc.code} {exc.message[:200]}", transient=transient, status=exc.code
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendError(f"smtp: {type(exc).__name__}", transient=True) from exc
        return SendResult(self.provider, message_id)
