"""Entry point: `python -m hotline_console.main` (or `hotline-console`), port CONSOLE_PORT."""

from __future__ import annotations

import contextlib

from hotline.logging import configure_logging, get_logger
from hotline.service import serve
from hotline.settings import redacted
from hotline_console.app import build
from hotline_console.settings import ConsoleSettings

log = get_logger(__name__)


def main() -> None:
    settings = ConsoleSettings()
    configure_logging("console", settings.log_level, settings.log_json)
    log.info("starting", extra={"settings": redacted(settings)})
    components = build(settings)
    with contextlib.suppress(KeyboardInterrupt):
        serve(components.app, settings.host, settings.port, settings.log_level)


if __name__ == "__main__":
    main()
