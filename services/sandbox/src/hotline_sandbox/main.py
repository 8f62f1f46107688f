"""`hotline-sandbox`: run every outbound provider locally on SANDBOX_PORT (default 8009)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from .server import start_sandbox
from .settings import SandboxSettings


async def _serve(settings: SandboxSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with start_sandbox(settings.port, settings.smtp_port, settings, settings.host) as sb:
        print(
            f"hotline-sandbox: HTTP {sb.base_url} (controls at {sb.base_url}/sandbox/messages, "
            f"live view {sb.base_url}/sandbox/stream), SMTP {sb.smtp_host}:{sb.smtp_port}",
            flush=True,
        )
        await stop.wait()


def main() -> None:
    asyncio.run(_serve(SandboxSettings()))


if __name__ == "__main__":
    main()
