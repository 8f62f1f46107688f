"""The ingest app: dependencies built once per process and wired into the shared scaffolding."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.middleware import Middleware
from pydantic import BaseModel

from hotline.clock import Clock, SystemClock
from hotline.contracts.topics import INBOUND
from hotline.ids import new_event_id
from hotline.kafka import Publisher, ensure_topics, kafka_ready, make_producer
from hotline.logging import get_logger
from hotline.mongo import MotorClient, make_client, mongo_ready
from hotline.service import Lifecycle, create_app
from hotline.settings import redacted
from hotline_ingest.dedup import DedupLedger
from hotline_ingest.fastpath import DirectDispatch
from hotline_ingest.intake import Intake
from hotline_ingest.metrics import prime as prime_metrics
from hotline_ingest.normalize import to_e164
from hotline_ingest.ratelimit import TokenBucketLimiter
from hotline_ingest.routes import DOCUMENTED_MODELS, Deps, make_router
from hotline_ingest.settings import IngestSettings

log = get_logger(__name__)

SERVICE = "ingest"
DESCRIPTION = """Receives every call and message sent to the hotline, verifies the provider's
signature over the raw bytes, normalises it into an `InboundEvent` and publishes it to
`hotline.inbound.v1` exactly once per delivery. A 2xx answer means the broker acknowledged the
event; 503 with `Retry-After` means it was not confirmed (a record the producer had already queued
may still reach the topic) and the provider should retry: the retry of the same delivery is
deduplicated (published under the same event id, or answered as a duplicate)."""


async def _with_retries(name: str, step: Callable[[], Awaitable[Any]], attempts: int = 30) -> None:
    """A start-up step that waits for its dependency (the broker may still be starting)."""
    for attempt in range(1, attempts + 1):
        try:
            await step()
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.warning(
                "start-up step failed; retrying",
                extra={"step": name, "attempt": attempt, "error": f"{type(exc).__name__}"},
            )
            await asyncio.sleep(min(2.0, 0.2 * attempt))


def build_app(
    settings: IngestSettings,
    *,
    clock: Clock | None = None,
    producer: AIOKafkaProducer | None = None,
    mongo: MotorClient | None = None,
) -> FastAPI:
    """The ingest FastAPI app. Producer and Mongo client are started and stopped by its lifespan
    (pass them in to share or fake them; the app owns what it creates)."""
    clock = clock or SystemClock()
    # Every channel's accepted/rejected/... series exists from the first scrape, at 0: alerts
    # on rate() and ratios see 0 instead of no series for what has not happened yet.
    prime_metrics()
    owns_producer = producer is None
    owns_mongo = mongo is None
    mongo = mongo or make_client(
        settings.mongodb_uri.get_secret_value(),
        f"hotline-{SERVICE}",
        serverSelectionTimeoutMS=int(settings.dedup_timeout_s * 1000),
    )
    db = mongo[settings.mongodb_database]
    ledger = DedupLedger(
        db,
        clock,
        inflight_window_s=settings.inflight_window_s,
        timeout_s=settings.dedup_timeout_s,
        batch_size=settings.dedup_batch_size,
        concurrency=settings.dedup_batch_concurrency,
    )
    sender_limiter = TokenBucketLimiter(
        settings.sender_burst, settings.sender_per_minute, max_keys=settings.limiter_max_keys
    )
    intake = Intake(None, ledger, settings.topics.inbound, sender_limiter, settings.breaker_open_s)
    kafka: dict[str, AIOKafkaProducer] = {} if producer is None else {"producer": producer}
    deps = Deps(
        settings=settings,
        intake=intake,
        clock=clock,
        new_id=new_event_id,
        web_limiter=TokenBucketLimiter(
            settings.web_burst, settings.web_per_minute, max_keys=settings.limiter_max_keys
        ),
        desk_limiter=TokenBucketLimiter(
            settings.desk_burst, settings.desk_per_minute, max_keys=settings.limiter_max_keys
        ),
    )

    lifecycle = Lifecycle()

    def new_producer() -> AIOKafkaProducer:
        # aiokafka binds a producer to the running loop, which uvicorn creates: made at start-up.
        return make_producer(
            settings.kafka_bootstrap_servers,
            client_id=f"hotline-{SERVICE}",
            # The request gives up at publish_timeout_s; this only bounds how long the
            # producer keeps a record it could not deliver.
            request_timeout_ms=max(10_000, int(settings.publish_timeout_s * 4000)),
        )

    async def start() -> None:
        log.info("ingest starting", extra={"settings": redacted(settings)})
        await _with_retries(
            "ensure_topics",
            lambda: ensure_topics(
                settings.kafka_bootstrap_servers, settings.topics, specs=(INBOUND,)
            ),
        )
        if owns_producer:
            kafka["producer"] = new_producer()
            await _with_retries("kafka_producer", kafka["producer"].start)
        intake.publisher = Publisher(
            kafka["producer"],
            SERVICE,
            timeout_s=settings.publish_timeout_s,
            renew=new_producer if owns_producer else None,
        )
        # Everything built so far (pydantic schemas, phonenumbers metadata, the app) lives as
        # long as the process: moving it out of the collector's sight turns a ~60 ms full
        # collection, which landed on the p99 of request latency, into a sub-millisecond one.
        to_e164("0912345678")  # load the region metadata phonenumbers reads lazily
        gc.collect()
        gc.freeze()
        # Indexes serve only the expiry; requests are answered without them (and with 503
        # while the database is down), so a database outage does not block start-up.
        try:
            await asyncio.wait_for(ledger.ensure_indexes(), settings.dedup_timeout_s * 3)
        except Exception as exc:
            log.warning("dedup indexes not ensured yet", extra={"error": type(exc).__name__})

    async def stop() -> None:
        await ledger.close()
        if owns_producer and intake.publisher is not None:
            await intake.publisher.stop()
        if owns_mongo:
            mongo.close()

    async def expire_claims() -> None:
        retention = timedelta(days=settings.dedup_retention_days)
        while True:
            try:
                await ledger.ensure_indexes()
                deleted = await ledger.expire(retention)
                log.info("dedup claims expired", extra={"deleted": deleted})
            except Exception as exc:  # the database may be down: try again next round
                log.warning("dedup expiry failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(settings.dedup_expiry_interval_s)

    lifecycle.on_startup(start)
    lifecycle.on_shutdown(stop)
    lifecycle.run_in_background(expire_claims)

    app = create_app(
        service=SERVICE,
        title="Hotline ingest",
        description=DESCRIPTION,
        checks={
            "kafka": lambda: kafka_ready(
                intake.publisher.producer if intake.publisher else kafka["producer"]
            ),
            "mongodb": lambda: mongo_ready(mongo),
        },
        lifecycle=lifecycle,
        # FastAPI's built-in OpenTelemetry hooks cost a few % per request; Prometheus metrics
        # (shared middleware + metrics.py) are what Hotline's dashboards read.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    router = make_router(deps)
    app.include_router(router)
    # Innermost user middleware: inside the shared request metrics, before FastAPI's routing.
    app.user_middleware.append(Middleware(DirectDispatch, fastapi_app=app, routes=router.routes))
    _document_raw_bodies(app, DOCUMENTED_MODELS)
    app.state.deps = deps
    app.state.ledger = ledger
    return app


def _document_raw_bodies(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Handlers read raw bytes (signatures cover them), so FastAPI cannot see their body
    models; add the models' schemas to the OpenAPI components the routes refer to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
