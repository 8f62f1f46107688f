"""Wiring: the notifier's parts built from its settings and the dependencies main() made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI

from hotline.clock import Clock
from hotline.contracts.events import CaseEvent, DispatchDecision
from hotline.kafka import Publisher, ensure_topics, kafka_ready
from hotline.mongo import MotorDatabase, mongo_ready
from hotline.runner import ConsumerWorker, RunnerConfig
from hotline.service import Lifecycle, create_app

from .api import AckLinks, ack_router
from .channels import ChannelRegistry, build_channels
from .compose import Composer
from .delivery import Deliverer, RetryPolicy
from .escalation import EscalationEngine, Policy
from .handlers import Handlers
from .http_client import ProviderHttp
from .ratelimit import RateLimiter, replica_share
from .repository import Repository
from .settings import NotifierSettings
from .templates import Templates
from .tokens import AckTokens


@dataclass
class Notifier:
    """Every part of one notifier process (tests build several against one database)."""

    settings: NotifierSettings
    repo: Repository
    channels: ChannelRegistry
    deliverer: Deliverer
    engine: EscalationEngine
    handlers: Handlers
    links: AckLinks
    publisher: Publisher

    @classmethod
    def build(
        cls,
        settings: NotifierSettings,
        *,
        http: ProviderHttp,
        publisher: Publisher,
        db: MotorDatabase,
        clock: Clock,
        channels: ChannelRegistry | None = None,
    ) -> Notifier:
        s = settings
        repo = Repository(db, insert_window_s=s.insert_window_ms / 1000)
        registry = channels or build_channels(s, http, token_store=repo)
        templates = Templates.load(s.templates_path)
        composer = Composer(templates, s.public_base_url)
        tokens = AckTokens(
            s.ack_signing_key.get_secret_value(), timedelta(seconds=s.ack_token_ttl_s)
        )
        policy = RetryPolicy(
            attempts=s.send_attempts,
            backoff_initial_s=s.backoff_initial_s,
            backoff_max_s=s.backoff_max_s,
            max_retry_after_s=s.max_retry_after_s,
            lease_s=s.step_lease_s,
        )
        limiter = RateLimiter(
            replica_share(s.rate_limits, s.rate_limit_replicas), s.max_rate_wait_s
        )
        deliverer = Deliverer(
            repo, registry, limiter, clock, policy, max_concurrent_sends=s.max_concurrent_sends
        )
        engine = EscalationEngine(
            repo=repo,
            deliverer=deliverer,
            composer=composer,
            tokens=tokens,
            publisher=publisher,
            topics=s.topics,
            clock=clock,
            policy=Policy(
                quiet_start=s.quiet_hours_start,
                quiet_end=s.quiet_hours_end,
                quiet_priorities=frozenset(s.quiet_hours_priorities),
                reminder_interval=timedelta(seconds=s.reminder_interval_s),
                max_reminders=s.max_reminders,
                top_level_repeats=s.top_level_repeats,
            ),
            lease_s=s.step_lease_s,
            batch=s.scheduler_batch,
            interval_s=s.scheduler_interval_s,
            sweep_s=s.scheduler_sweep_s,
            retention=timedelta(days=s.retention_days),
        )
        handlers = Handlers(
            engine=engine,
            deliverer=deliverer,
            composer=composer,
            repo=repo,
            topics=s.topics,
            clock=clock,
            default_timeout_s=s.default_timeout_s,
        )
        links = AckLinks(tokens=tokens, repo=repo, engine=engine, topics=s.topics, clock=clock)
        return cls(s, repo, registry, deliverer, engine, handlers, links, publisher)

    def workers(self) -> list[ConsumerWorker[DispatchDecision] | ConsumerWorker[CaseEvent]]:
        """The two consumers: decisions, and case events (separate groups, separate lag)."""
        s = self.settings
        dispatched: ConsumerWorker[DispatchDecision] = ConsumerWorker(
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=s.consumer_group,
            model=DispatchDecision,
            handler=self.handlers.on_dispatched,
            # Different cases of one partition are alerted concurrently (order kept per case).
            config=RunnerConfig(
                service="notifier",
                topic=s.topics.dispatched,
                deadletter_topic=s.topics.deadletter,
                key_concurrency=s.max_in_flight,
            ),
            publisher=self.publisher,
            # Partitions of a poll are processed concurrently, so a poll should hold several:
            # with the default 1 MiB per partition, one partition's backlog fills a whole poll.
            max_partition_fetch_bytes=s.max_partition_fetch_bytes,
        )
        case_events: ConsumerWorker[CaseEvent] = ConsumerWorker(
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=f"{s.consumer_group}-case-events",
            model=CaseEvent,
            handler=self.handlers.on_case_event,
            config=RunnerConfig(
                service="notifier",
                topic=s.topics.case_events,
                deadletter_topic=s.topics.deadletter,
            ),
            publisher=self.publisher,
        )
        return [dispatched, case_events]

    def app(self, lifecycle: Lifecycle | None = None, *, run_consumers: bool = True) -> FastAPI:
        """The HTTP app: ack links plus /healthz, /readyz, /metrics; consumers and the timer
        run in its lifespan."""
        lifecycle = lifecycle or Lifecycle()
        s = self.settings

        async def prepare() -> None:
            await ensure_topics(s.kafka_bootstrap_servers, s.topics)
            await self.repo.ensure_indexes()

        lifecycle.on_startup(prepare)
        workers: list[ConsumerWorker[DispatchDecision] | ConsumerWorker[CaseEvent]] = []

        async def start_consumers() -> None:
            # aiokafka binds its clients to the running loop, so they are built here.
            workers.extend(self.workers())
            for worker in workers:
                await worker.start()
                lifecycle.run_in_background(worker.run)

        async def stop_consumers() -> None:
            for worker in workers:
                await worker.stop()

        if run_consumers:
            lifecycle.on_startup(start_consumers)
            lifecycle.on_shutdown(stop_consumers)
        lifecycle.run_in_background(self.engine.run)

        async def stop_engine() -> None:
            self.engine.stop()

        lifecycle.on_shutdown(stop_engine)

        async def kafka_check() -> None:
            await kafka_ready(self.publisher.producer)

        async def mongo_check() -> None:
            await mongo_ready(self.repo.db.client)

        app = create_app(
            service="notifier",
            title="Hotline notifier",
            description="Alerts, escalation, acknowledgement links and citizen replies.",
            checks={"kafka": kafka_check, "mongodb": mongo_check},
            lifecycle=lifecycle,
        )
        app.include_router(ack_router(self.links))
        return app
