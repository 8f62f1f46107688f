"""The checks, by name, over one repository tree (the real one, or a broken copy in tests)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.check import (
    catalog,
    consistency,
    exporters,
    generate,
    kube,
    promql,
    render,
    sandbox,
    static,
)
from deploy.check.paths import AUTOSCALED, DEV_SERVICES, OVERLAYS, REPO, SERVICES, crd_dir


@dataclass
class Suite:
    root: Path = REPO
    overlays: tuple[str, ...] = OVERLAYS
    services: tuple[str, ...] = SERVICES
    autoscaled: tuple[str, ...] = AUTOSCALED
    dev_services: tuple[str, ...] = DEV_SERVICES
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ inputs (built once)

    @functools.cached_property
    def rendered(self) -> dict[str, render.Rendered]:
        missing = render.missing_generator_sources(self.root)
        if missing:
            raise render.BuildError(
                "files the ConfigMaps are generated from are missing:\n  " + "\n  ".join(missing)
            )
        return render.build_overlays(self.root, self.overlays)

    @functools.cached_property
    def metrics(self) -> catalog.MetricCatalog:
        cat = catalog.metric_catalog()
        if cat.fallbacks:
            self.notes.append(
                "metrics of "
                + ", ".join(cat.fallbacks)
                + " taken from docs/architecture.md (their metrics module does not exist yet)"
            )
        return cat

    @functools.cached_property
    def exported_by(self) -> dict[str, frozenset[str]]:
        """Metric series → the services whose code exports them."""
        return exporters.metric_exporters(self.root, self.services)

    @functools.cached_property
    def settings(self) -> dict[str, catalog.ServiceSettings | None]:
        found = {svc: catalog.service_settings(svc) for svc in self.services}
        absent = [svc for svc, s in found.items() if s is None]
        if absent:
            self.notes.append(
                "settings of "
                + ", ".join(absent)
                + " not checked field by field (their settings module does not exist yet)"
            )
        return found

    @functools.cached_property
    def dev_settings(self) -> dict[str, catalog.ServiceSettings | None]:
        """The dev-only services' settings (the sandbox: plain BaseSettings)."""
        found = {svc: catalog.dev_service_settings(svc) for svc in self.dev_services}
        absent = [svc for svc, s in found.items() if s is None]
        if absent:
            self.notes.append(
                "settings of " + ", ".join(absent) + " not checked (no settings module)"
            )
        return found

    @functools.cached_property
    def example_secrets(self) -> dict[str, dict[str, str]]:
        dev = self.rendered.get("dev") or render.Rendered(
            "dev", render.build(self.root / "deploy" / "k8s" / "overlays" / "dev")
        )
        return consistency.example_secret_data(dev)

    # ------------------------------------------------------------------ checks

    def each_overlay(self, fn: Callable[[render.Rendered], list[str]]) -> list[str]:
        return [p for r in self.rendered.values() for p in fn(r)]

    def check_generated(self) -> list[str]:
        """Generated manifests (KafkaTopics, PrometheusRule) are up to date."""
        return generate.stale(self.root)

    def check_schemas(self) -> list[str]:
        """Core objects against Kubernetes' schemas, custom resources against the CRDs."""
        crds = crd_dir(self.root)
        if not crds.is_dir():
            return [f"CRD directory {crds} not found (shared/k8s-crds beside the repository)"]
        return [
            f"[{r.overlay}] {p}"
            for r in self.rendered.values()
            for p in kube.validate_all(r.objects, crds)
        ]

    def check_security(self) -> list[str]:
        """Pod security on every container (non-root, read-only FS, no escalation, caps, seccomp,
        resources)."""
        return self.each_overlay(consistency.check_pod_security)

    def check_services(self) -> list[str]:
        """Each service: Deployment, ServiceAccount, Service, image, port and probes match its
        settings."""
        return self.each_overlay(
            lambda r: consistency.check_services(r, self.services, self.settings)
        )

    def check_env(self) -> list[str]:
        """Every env var is one the service settings read (the sandbox's included); file paths
        point into mounted ConfigMaps; MONGODB_URI only where the code uses MongoDB."""
        shared = catalog.shared_env()
        every = (*self.services, *self.dev_services)
        settings = {**self.settings, **self.dev_settings}
        mongo = consistency.mongodb_users(self.root, every)
        return self.each_overlay(
            lambda r: consistency.check_env(r, every, settings, shared, self.example_secrets, mongo)
        )

    def check_references(self) -> list[str]:
        """ConfigMaps and Secrets that pods reference exist (Secrets: in the example set)."""
        return self.each_overlay(lambda r: consistency.check_references(r, self.example_secrets))

    def check_topics(self) -> list[str]:
        """KafkaTopics match the topic registry (partitions, retention, cleanup, replication)."""
        return self.each_overlay(consistency.check_topics)

    def check_autoscaling(self) -> list[str]:
        """KEDA triggers, consumer groups and maxReplicaCount <= partitions; HPA on CPU for
        ingest."""
        return self.each_overlay(
            lambda r: consistency.check_autoscaling(r, self.autoscaled, self.settings, self.root)
        )

    def check_monitoring(self) -> list[str]:
        """ServiceMonitors, the PrometheusRule and the dashboard ConfigMaps."""
        return self.each_overlay(
            lambda r: consistency.check_monitoring(r, self.root, self.services)
        )

    def check_network(self) -> list[str]:
        """NetworkPolicies allow the needed flows and deny the rest (notifier -> sandbox where
        the sandbox is deployed, and nothing else into or out of it)."""
        return self.each_overlay(consistency.check_network)

    def check_sandbox(self) -> list[str]:
        """The provider sandbox: dev only (prod renders none and sends to real providers), a
        sound workload accepting the notifier's credentials, every endpoint it plays pointed at
        its Service, and no notifier endpoint left at localhost."""
        notifier = self.settings.get("notifier")
        return self.each_overlay(
            lambda r: sandbox.check_sandbox(
                r, self.dev_settings.get("sandbox"), notifier, self.example_secrets
            )
        )

    def check_overlays(self) -> list[str]:
        """dev is single-replica development; prod is production, with PDBs and anti-affinity."""
        return self.each_overlay(
            lambda r: consistency.check_overlay(r, self.services, self.autoscaled)
        )

    def check_placeholders(self) -> list[str]:
        """The example secrets start the services in development and are refused in production."""
        if "dev" not in self.rendered:
            return []
        return consistency.check_placeholders_refused(
            self.rendered["dev"], self.settings, self.services
        )

    def check_promql(self) -> list[str]:
        """Every PromQL expression parses and names exported metrics and labels; a selector
        naming a service (`service="classifier"`) asks for a metric that service's code exports;
        service lists in `up{job=~...}` name every service."""
        rules = self.root / "deploy" / "prometheus" / "rules.yml"
        exprs = list(promql.rule_expressions(rules))
        for path in sorted((self.root / "deploy" / "grafana").glob("*.json")):
            exprs += list(promql.dashboard_expressions(path))
        recorded = promql.recorded_names(rules)
        return (
            promql.check_expressions(exprs, self.metrics, recorded)
            + promql.check_service_exports(exprs, self.exported_by, recorded, self.services)
            + promql.check_service_lists(exprs, self.services)
        )

    def check_promtool(self) -> list[str]:
        """promtool check rules / check config."""
        groups = None
        for r in self.rendered.values():
            prs = r.of_kind("PrometheusRule")
            if prs:
                groups = prs[0]["spec"]["groups"]
                break
        return static.run_promtool(self.root, groups)

    def check_runbooks(self) -> list[str]:
        """Every alert has summary, description, severity and a runbook section in
        deploy/README.md."""
        return static.check_runbooks(self.root)

    def check_dashboards(self) -> list[str]:
        """Dashboards use a data-source variable everywhere and have unique uids."""
        return static.check_dashboards(self.root)

    def check_dockerfile(self) -> list[str]:
        """The Dockerfile's targets, COPY sources, runtime stage, ENV names and ports."""
        every = {**self.settings, **self.dev_settings}
        env_names = {svc: (set(s.env) if s else None) for svc, s in every.items()}
        dev_targets = {
            svc: tuple(
                v.default
                for v in s.env.values()
                if (v.field == "port" or v.field.endswith("_port")) and isinstance(v.default, int)
            )
            for svc, s in self.dev_settings.items()
            if s is not None
        }
        return static.check_dockerfile(self.root, self.services, env_names, dev_targets)


CHECKS: dict[str, str] = {
    name[len("check_") :]: " ".join((getattr(Suite, name).__doc__ or "").split())
    for name in dir(Suite)
    if name.startswith("check_")
}


def run(suite: Suite, name: str) -> list[str]:
    result: list[str] = getattr(suite, f"check_{name}")()
    return result
