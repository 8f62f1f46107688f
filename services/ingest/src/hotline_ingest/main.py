"""Entry point: `python -m hotline_ingest.main` (console script `hotline-ingest`)."""

from __future__ import annotations

from hotline.logging import configure_logging
from hotline.service import serve
from hotline_ingest.app import build_app
from hotline_ingest.settings import IngestSettings


def main() -> None:
    settings = IngestSettings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    serve(
        build_app(settings),
        settings.host,
        settings.port,
        settings.log_level,
        trusted_proxies=settings.trusted_proxy_networks,
    )


if __name__ == "__main__":
    main()
