"""Entry point: `python -m hotline_dispatcher.main` (or `hotline-dispatcher`).

Builds everything from `DispatcherSettings`: the organisation (refusing to start, naming the
file and line, when the configuration is invalid), the Kafka producer and consumers, the Mongo
client, the ops API, and the maintenance loop (reminders, gauges, outbox, working set).

    hotline-dispatcher                 run the service (port DISPATCHER_PORT, default 8003)
    hotline-dispatcher --check-config  validate the organisation files and exit
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from hotline.clock import Clock, SystemClock
from hotline.contracts.events import CaseEvent, DeliveryOutcome, TriagedEvent
from hotline.kafka import Publisher, ensure_topics, kafka_ready, make_producer
from hotline.logging import configure_logging, get_logger
from hotline.mongo import MotorClient, make_client, mongo_ready
from hotline.runner import ConsumerWorker, RunnerConfig
from hotline.service import Lifecycle, create_app, serve_built
from hotline.settings import redacted
from hotline_dispatcher import api
from hotline_dispatcher.config import ConfigError, Organisation, load_organisation
from hotline_dispatcher.flows import Dispatcher
from hotline_dispatcher.handlers import (
    BatchRunner,
    DeliveryBatchRunner,
    DeliveryHandler,
    TriagedHandler,
    case_event_handler,
)
from hotline_dispatcher.ops import CaseService
from hotline_dispatcher.repository import Repository
from hotline_dispatcher.settings import DispatcherSettings
from hotline_dispatcher.state import WorkingSet

log = get_logger(__name__)

SERVICE = "dispatcher"
STARTUP_RETRY_S = 60.0
REFRESH_SPACING = 10.0
CLAIMS_EXPIRY_S = 3600.0


@dataclass
class Components:
    """What `build_app` wired together (tests reach into it)."""

    app: FastAPI
    dispatcher: Dispatcher
    cases: CaseService
    repo: Repository
    client: MotorClient
    triaged_worker: ConsumerWorker[TriagedEvent]


def build(
    settings: DispatcherSettings,
    org: Organisation,
    clock: Clock | None = None,
    *,
    consumers: bool = True,
    maintenance: bool = True,
) -> Components:
    """Wire the service: one producer, one Mongo client, three consumers, the API.

    `consumers=False` / `maintenance=False` leave the Kafka consumers or the periodic loop out
    (tests of the API alone, tools).
    """
    clock = clock or SystemClock()
    topics = settings.topics

    def new_producer() -> AIOKafkaProducer:
        return make_producer(settings.kafka_bootstrap_servers, f"hotline-{SERVICE}")

    publisher = Publisher(new_producer(), SERVICE, settings.publish_timeout_s, renew=new_producer)
    client = make_client(settings.mongodb_uri.get_secret_value(), f"hotline-{SERVICE}")
    repo = Repository(client[settings.mongodb_database])
    working = WorkingSet()
    cases = CaseService(org, repo, clock, topics, publisher, working)
    dispatcher = Dispatcher(
        org,
        repo,
        clock,
        topics,
        working,
        acknowledge=cases.acknowledge_from_reply,
        claim_lease_s=settings.claim_lease_s,
    )
    lifecycle = Lifecycle()
    keep = max(org.routing.merge.window, org.routing.merge.followup_window)

    async def prepare() -> None:
        await ensure_topics(settings.kafka_bootstrap_servers, topics)
        await publisher.producer.start()
        deadline = asyncio.get_running_loop().time() + STARTUP_RETRY_S
        while True:
            try:
                await repo.ensure_indexes()
                await working.refresh(repo, clock.now(), keep)
                await cases.refresh_shifts()
                break
            except Exception as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                log.warning("database not ready, retrying", extra={"error": repr(exc)[:200]})
                await asyncio.sleep(2)
        log.info("working set loaded", extra={"open_cases": len(working.index)})

    async def stop_producer() -> None:
        await publisher.stop()
        client.close()

    lifecycle.on_startup(prepare)
    lifecycle.on_shutdown(stop_producer)

    handler = TriagedHandler(dispatcher)
    triaged_worker: ConsumerWorker[TriagedEvent] = ConsumerWorker(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group,
        model=TriagedEvent,
        handler=handler,
        config=_runner_config(settings, topics.triaged, topics.deadletter),
        publisher=publisher,
    )
    batch_runner = BatchRunner(
        triaged_worker.consumer,
        publisher,
        TriagedEvent,
        handler,
        triaged_worker.runner.config,
    )
    batch_runner.triaged = handler
    triaged_worker.runner = batch_runner
    case_worker: ConsumerWorker[CaseEvent] = ConsumerWorker(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.consumer_group}-case-events",
        model=CaseEvent,
        handler=case_event_handler(cases),
        config=_runner_config(settings, topics.case_events, topics.deadletter),
        publisher=publisher,
    )
    deliveries = DeliveryHandler(cases)
    delivery_worker: ConsumerWorker[DeliveryOutcome] = ConsumerWorker(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.consumer_group}-deliveries",
        model=DeliveryOutcome,
        handler=deliveries,
        config=_runner_config(settings, topics.deliveries, topics.deadletter),
        publisher=publisher,
    )
    delivery_runner = DeliveryBatchRunner(
        delivery_worker.consumer,
        publisher,
        DeliveryOutcome,
        deliveries,
        delivery_worker.runner.config,
    )
    delivery_runner.deliveries = deliveries
    delivery_worker.runner = delivery_runner
    if consumers:
        for worker in (triaged_worker, case_worker, delivery_worker):
            worker.attach(lifecycle)

    async def maintenance_loop() -> None:
        # The refresh (working set, loads, gauges) and the claims expiry read whole collections
        # on FerretDB, which grow with the day: the refresh waits at least REFRESH_SPACING
        # times as long as the previous one took, so it never takes more than a small share of
        # the database, and the expiry (15 days' retention) runs hourly.
        loop = asyncio.get_running_loop()
        next_refresh = loop.time() + settings.index_refresh_s
        next_expiry = loop.time() + settings.index_refresh_s
        while True:
            await asyncio.sleep(settings.maintenance_interval_s)
            await cases.maintenance(gauges=False)
            if loop.time() >= next_refresh:
                started = loop.time()
                try:
                    open_docs = await working.refresh(repo, clock.now(), keep)
                    await cases.refresh_gauges(open_docs)
                except Exception as exc:
                    log.warning("working set refresh failed", extra={"error": repr(exc)[:200]})
                took = loop.time() - started
                next_refresh = loop.time() + max(settings.index_refresh_s, REFRESH_SPACING * took)
            if loop.time() >= next_expiry:
                next_expiry = loop.time() + CLAIMS_EXPIRY_S
                try:
                    await repo.expire_claims(
                        "dispatch:", clock.now() - timedelta(days=settings.claims_retention_days)
                    )
                    await repo.expire_signed_out_sessions(clock.now())
                except Exception as exc:
                    log.warning(
                        "claims and signed-out sessions expiry failed",
                        extra={"error": repr(exc)[:200]},
                    )

    if maintenance:
        lifecycle.run_in_background(maintenance_loop)

    async def kafka_check() -> None:
        await kafka_ready(publisher.producer)

    async def mongo_check() -> None:
        await mongo_ready(client)

    app = create_app(
        service=SERVICE,
        title="Hotline dispatcher",
        description=(
            "Routes every triaged report to the responsible unit's on-call officer, keeps the "
            "case file, tracks the Director's directives. The ops API is under `/api/v1` "
            "(bearer tokens; roles viewer, officer, staff, director, admin)."
        ),
        checks={"kafka": kafka_check, "mongodb": mongo_check},
        lifecycle=lifecycle,
    )
    app.state.org = org
    app.state.repo = repo
    app.state.cases = cases
    app.state.dispatcher = dispatcher
    api.install(app, {token.get_secret_value(): who for token, who in settings.api_tokens.items()})
    return Components(app, dispatcher, cases, repo, client, triaged_worker)


def _runner_config(settings: DispatcherSettings, topic: str, deadletter: str) -> RunnerConfig:
    return RunnerConfig(
        service=SERVICE,
        topic=topic,
        deadletter_topic=deadletter,
        batch_size=settings.batch_size,
        linger_ms=settings.batch_linger_ms,
    )


def load_or_exit(settings: DispatcherSettings) -> Organisation:
    """The organisation, or exit 2 with every configuration problem named by file and line."""
    try:
        return load_organisation(
            settings.organisation_file, settings.rosters_file, settings.routing_file
        )
    except ConfigError as exc:
        print(f"dispatcher: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hotline-dispatcher", description=__doc__)
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration and exit"
    )
    args = parser.parse_args(argv)
    settings = DispatcherSettings()
    configure_logging(SERVICE, settings.log_level, settings.log_json)
    org = load_or_exit(settings)
    if args.check_config:
        print(
            f"dispatcher: configuration ok ({len(org.units)} units, {len(org.people)} people, "
            f"{len(org.rosters)} rosters, {len(org.routing.rules)} rules)"
        )
        return
    log.info("starting", extra={"settings": redacted(settings)})
    with contextlib.suppress(KeyboardInterrupt):
        # The Kafka clients are created inside the event loop that runs them.
        serve_built(
            lambda: build(settings, org).app,
            settings.host,
            settings.port,
            settings.log_level,
            trusted_proxies=settings.trusted_proxy_networks,
        )


if __name__ == "__main__":
    main()
