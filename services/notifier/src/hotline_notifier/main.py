"""`hotline-notifier` / `python -m hotline_notifier.main`: build the dependencies, serve."""

from __future__ import annotations

from typing import cast

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from hotline.clock import SystemClock
from hotline.kafka import Publisher, make_producer
from hotline.logging import configure_logging, get_logger
from hotline.mongo import make_client
from hotline.service import Lifecycle, serve
from hotline.settings import redacted

from .http_client import ProviderHttp
from .service import Notifier
from .settings import NotifierSettings

log = get_logger(__name__)


def build_http(settings: NotifierSettings) -> ProviderHttp:
    """One HTTP client for every provider, with bounded deadlines and a connection pool."""
    return ProviderHttp(
        connect_timeout_s=settings.http_connect_timeout_s,
        read_timeout_s=settings.http_read_timeout_s,
        total_timeout_s=settings.http_total_timeout_s,
        max_connections=200,
    )


def build_app(settings: NotifierSettings) -> FastAPI:
    lifecycle = Lifecycle()
    http = build_http(settings)

    # aiokafka needs the running loop (uvicorn's): the producer is made at start-up.
    def new_producer() -> AIOKafkaProducer:
        return make_producer(settings.kafka_bootstrap_servers, "notifier")

    publisher = Publisher(cast(AIOKafkaProducer, None), "notifier", renew=new_producer)
    mongo = make_client(settings.mongodb_uri.get_secret_value(), "hotline-notifier")
    notifier = Notifier.build(
        settings,
        http=http,
        publisher=publisher,
        db=mongo[settings.mongodb_database],
        clock=SystemClock(),
    )

    async def start_producer() -> None:
        publisher.producer = new_producer()
        await publisher.producer.start()

    async def close() -> None:
        if publisher.producer is not None:
            await publisher.stop()
        await http.aclose()
        mongo.close()

    lifecycle.on_startup(start_producer)
    lifecycle.on_shutdown(close)
    return notifier.app(lifecycle)


def main() -> None:
    settings = NotifierSettings()
    configure_logging("notifier", settings.log_level, settings.log_json)
    log.info("starting", extra={"settings": redacted(settings)})
    serve(
        build_app(settings),
        settings.host,
        settings.port,
        settings.log_level,
        trusted_proxies=settings.trusted_proxy_networks,
    )


if __name__ == "__main__":
    main()
