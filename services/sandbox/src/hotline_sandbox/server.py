"""Run the sandbox in-process: `async with start_sandbox() as sb:` (tests, `make run`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn

from .app import Sandbox, create_app
from .settings import SandboxSettings
from .smtp import start_smtp


@dataclass
class SandboxHandle:
    """A running sandbox: where each provider lives, and its state for direct inspection."""

    sandbox: Sandbox
    base_url: str
    smtp_host: str
    smtp_port: int

    @property
    def urls(self) -> dict[str, str]:
        """Base URL per provider, as the notifier's settings expect them."""
        b = self.base_url
        return {
            "twilio": f"{b}/twilio",
            "esms": f"{b}/esms",
            "zalo": f"{b}/zalo",
            "zalo_oauth": f"{b}/zalo-oauth",
            "zalo_business": f"{b}/zalo-business",
            "viber": f"{b}/viber",
            "whatsapp": f"{b}/graph",
            "telegram": f"{b}/telegram",
            "webhook": f"{b}/webhook",
        }

    def notifier_env(self) -> dict[str, str]:
        """`NOTIFIER_*` variables pointing a notifier process at this sandbox."""
        u = self.urls
        return {
            "NOTIFIER_TWILIO_BASE_URL": u["twilio"],
            "NOTIFIER_ESMS_BASE_URL": u["esms"],
            "NOTIFIER_ZALO_BASE_URL": u["zalo"],
            "NOTIFIER_ZALO_OAUTH_BASE_URL": u["zalo_oauth"],
            "NOTIFIER_ZALO_BUSINESS_BASE_URL": u["zalo_business"],
            "NOTIFIER_VIBER_BASE_URL": u["viber"],
            "NOTIFIER_WHATSAPP_BASE_URL": u["whatsapp"],
            "NOTIFIER_TELEGRAM_BASE_URL": u["telegram"],
            "NOTIFIER_WEBHOOK_BASE_URL": u["webhook"],
            "NOTIFIER_SMTP_HOST": self.smtp_host,
            "NOTIFIER_SMTP_PORT": str(self.smtp_port),
        }


class _DropInjectedFaults(logging.Filter):
    """Injected connection drops are intended; keep them out of the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionAbortedError)


def _quiet_logs() -> None:
    logging.getLogger("uvicorn.error").addFilter(_DropInjectedFaults())
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's per-session chatter
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")


@contextlib.asynccontextmanager
async def start_sandbox(
    port: int = 0,
    smtp_port: int = 0,
    settings: SandboxSettings | None = None,
    host: str = "127.0.0.1",
) -> AsyncIterator[SandboxHandle]:
    """Start the HTTP and SMTP sandbox in the running loop; port 0 picks free ports."""
    settings = settings or SandboxSettings(host=host, port=port, smtp_port=smtp_port)
    _quiet_logs()
    sandbox = Sandbox(settings)
    app = create_app(sandbox)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: no Nagle delay between an answer's head and body.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    http_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    smtp = await start_smtp(sandbox, host, smtp_port)
    actual_smtp_port = smtp.sockets[0].getsockname()[1]
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield SandboxHandle(sandbox, f"http://{host}:{http_port}", host, actual_smtp_port)
    finally:
        sandbox.released.set()
        server.should_exit = True
        smtp.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(smtp.wait_closed(), 2)
        sock.close()
