"""The checks fail when a manifest, rule or dashboard breaks: each case copies the deploy tree
(and the service files it is built from) to a temporary directory, breaks one thing, and
expects the named check to report it."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.check.paths import REPO, shared_dir
from deploy.check.suite import Suite, run

K8S = "deploy/k8s"
SANDBOX = f"{K8S}/components/provider-sandbox"


def copy_tree(dst: Path) -> None:
    for rel in ("deploy/k8s", "deploy/grafana", "deploy/prometheus"):
        shutil.copytree(REPO / rel, dst / rel)
    for rel in (
        "deploy/README.md",
        "Dockerfile",
        ".dockerignore",
        "pyproject.toml",
        "uv.lock",
        "libs/hotline/pyproject.toml",
    ):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dst / rel)
    for pattern in (
        "services/*/pyproject.toml",
        "tools/*/pyproject.toml",
        # All of the services' code: the checks read consumer groups and MongoDB use from it.
        "services/*/src/hotline_*/**/*.py",
        "services/*/src/hotline_*/config/*.yaml",
        "services/*/src/hotline_*/data/*.yaml",
    ):
        for src in REPO.glob(pattern):
            target = dst / src.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def edit(rel: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}: the test case is stale"
        path.write_text(text.replace(old, new, count))

    return apply


def append(rel: str, extra: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / rel
        path.write_text(path.read_text() + extra)

    return apply


def drop_policy(name: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / K8S / "base" / "networkpolicies.yaml"
        docs = path.read_text().split("\n---\n")
        kept = [d for d in docs if f"  name: {name}\n" not in d]
        assert len(kept) == len(docs) - 1
        path.write_text("\n---\n".join(kept))

    return apply


def drop_sandbox_policy(name: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / SANDBOX / "networkpolicies.yaml"
        docs = path.read_text().split("\n---\n")
        kept = [d for d in docs if f"  name: {name}\n" not in d]
        assert len(kept) == len(docs) - 1
        path.write_text("\n---\n".join(kept))

    return apply


def drop_datasource_variable(root: Path) -> None:
    path = root / "deploy/grafana/hotline-notifier.json"
    doc = json.loads(path.read_text())
    doc["templating"]["list"] = [v for v in doc["templating"]["list"] if v["type"] != "datasource"]
    path.write_text(json.dumps(doc))


CASES: list[tuple[str, Callable[[Path], None], str, str, tuple[str, ...]]] = [
    # (case, breakage, check, expected in a problem, overlays to build)
    (
        "KEDA max replicas above partitions",
        edit(
            f"{K8S}/components/autoscaling/scaledobjects.yaml",
            "maxReplicaCount: 6",
            "maxReplicaCount: 8",
        ),
        "autoscaling",
        "maxReplicaCount 8 > 6",
        ("prod",),
    ),
    (
        "notifier replicas above their share of the provider rate limits",
        edit(
            f"{K8S}/components/autoscaling/kustomization.yaml",
            "NOTIFIER_RATE_LIMIT_REPLICAS=6",
            "NOTIFIER_RATE_LIMIT_REPLICAS=2",
        ),
        "autoscaling",
        "up to 6 replicas but NOTIFIER_RATE_LIMIT_REPLICAS=2",
        ("prod",),
    ),
    (
        "KEDA consumer group not the service's",
        edit(
            f"{K8S}/components/autoscaling/scaledobjects.yaml",
            "consumerGroup: notifier-case-events",
            "consumerGroup: notifier",
        ),
        "autoscaling",
        "consumerGroup 'notifier' for hotline.case-events.v1",
        ("prod",),
    ),
    (
        "a KafkaTopic patched away from the registry",
        append(
            f"{K8S}/overlays/prod/kustomization.yaml",
            "  - target:\n      kind: KafkaTopic\n      name: hotline-inbound-v1\n    patch: |-\n"
            "      - op: replace\n        path: /spec/partitions\n        value: 12\n",
        ),
        "topics",
        "12 partitions, the registry says 6",
        ("prod",),
    ),
    (
        "an unknown field in a Deployment",
        edit(
            f"{K8S}/base/ingest.yaml",
            "imagePullPolicy: IfNotPresent",
            "imagePullPolcy: IfNotPresent",
        ),
        "schemas",
        "imagePullPolcy",
        ("dev",),
    ),
    (
        "an unknown field in a Strimzi resource",
        edit(f"{K8S}/components/kafka/kafka.yaml", "deleteClaim: false", "deleteClaims: false"),
        "schemas",
        "deleteClaims",
        ("dev",),
    ),
    (
        "a wrong type in a KEDA resource",
        edit(
            f"{K8S}/components/autoscaling/scaledobjects.yaml",
            "pollingInterval: 15",
            "pollingInterval: fast",
        ),
        "schemas",
        "pollingInterval",
        ("prod",),
    ),
    (
        "a writable root filesystem",
        edit(
            f"{K8S}/base/classifier.yaml",
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        ),
        "security",
        "readOnlyRootFilesystem",
        ("dev",),
    ),
    (
        "an env var the settings do not read",
        edit(f"{K8S}/base/ingest.yaml", "name: INGEST_PORT", "name: INGEST_PROT"),
        "env",
        "INGEST_PROT",
        ("dev",),
    ),
    (
        "the console configured with another service's variables",
        edit(f"{K8S}/base/console.yaml", "name: CONSOLE_PORT", "name: NOTIFIER_PORT"),
        "env",
        "env NOTIFIER_PORT is not read by ConsoleSettings",
        ("dev",),
    ),
    (
        "the console listening on localhost in its pod",
        edit(f"{K8S}/base/console.yaml", "name: CONSOLE_HOST", "name: CONSOLE_HOSTNAME"),
        "env",
        "CONSOLE_HOST is '127.0.0.1'",
        ("dev",),
    ),
    (
        "the database credential given to a service that does not use MongoDB",
        edit(
            f"{K8S}/base/console.yaml",
            "          env:\n",
            "          env:\n            - name: MONGODB_URI\n              valueFrom:\n"
            "                secretKeyRef:\n                  name: hotline-mongodb\n"
            "                  key: MONGODB_URI\n",
        ),
        "env",
        "console: gets MONGODB_URI",
        ("dev",),
    ),
    (
        "the console's container port changed",
        edit(f"{K8S}/base/console.yaml", "containerPort: 8005", "containerPort: 8050"),
        "services",
        "container port 'http' is 8050",
        ("dev",),
    ),
    (
        "a readiness probe on the wrong path",
        edit(f"{K8S}/base/dispatcher.yaml", "path: /readyz", "path: /ready"),
        "services",
        "readinessProbe must GET /readyz",
        ("dev",),
    ),
    (
        "a container port that is not the service's",
        edit(f"{K8S}/base/notifier.yaml", "containerPort: 8004", "containerPort: 8040"),
        "services",
        "container port 'http' is 8040",
        ("dev",),
    ),
    (
        "a config file path outside the mounted ConfigMap",
        edit(
            f"{K8S}/base/dispatcher.yaml",
            "/etc/hotline/dispatcher/rosters.yaml",
            "/etc/hotline/dispatcher/roster.yaml",
        ),
        "env",
        "has no key roster.yaml",
        ("dev",),
    ),
    (
        "a consumer group renamed in the service's code (the copy, not the repository)",
        edit(
            "services/notifier/src/hotline_notifier/service.py",
            '-case-events"',
            '-events"',
        ),
        "autoscaling",
        "consumerGroup 'notifier-case-events' for hotline.case-events.v1",
        ("prod",),
    ),
    (
        "the console without a PodDisruptionBudget in prod",
        edit(
            f"{K8S}/components/high-availability/pdbs.yaml",
            "      app.kubernetes.io/name: console\n",
            "      app.kubernetes.io/name: console-gone\n",
        ),
        "overlays",
        "[prod] console: no PodDisruptionBudget",
        ("prod",),
    ),
    (
        "one console replica in prod",
        edit(
            f"{K8S}/overlays/prod/kustomization.yaml",
            "        path: /spec/replicas\n        value: 2\n",
            "        path: /spec/replicas\n        value: 1\n",
        ),
        "overlays",
        "[prod] console: 1 replica(s)",
        ("prod",),
    ),
    (
        "the service-down alert leaving out the console",
        edit("deploy/prometheus/rules.yml", "dispatcher|notifier|console", "dispatcher|notifier"),
        "promql",
        "HotlineServiceDown: up{job=~'ingest|classifier|dispatcher|notifier'} leaves out console",
        (),
    ),
    (
        "a metric no service exports",
        edit(
            "deploy/prometheus/rules.yml",
            "increase(hotline_deadletters_total[10m])",
            "increase(hotline_dead_letters_total[10m])",
        ),
        "promql",
        "hotline_dead_letters_total is not exported",
        (),
    ),
    (
        "a label the metric does not have",
        edit(
            "deploy/prometheus/rules.yml",
            'hotline_http_requests_total{status="5xx"}',
            'hotline_http_requests_total{code="5xx"}',
        ),
        "promql",
        "no label(s) code",
        (),
    ),
    (
        "a panel asking a service for a metric only others export",
        edit(
            "deploy/grafana/hotline-ingest.json",
            'rate(hotline_produced_messages_total{service=\\"ingest\\"}',
            'rate(hotline_deadletters_total{service=\\"ingest\\"}',
        ),
        "promql",
        "hotline_deadletters_total is not exported by ingest",
        (),
    ),
    (
        "an alert on a recorded series for a list of services, one exporting none of it",
        edit(
            "deploy/prometheus/rules.yml",
            "hotline:consumer_lag_messages:sum > 100",
            'hotline:consumer_lag_messages:sum{service=~"classifier|ingest"} > 100',
        ),
        "promql",
        "hotline:consumer_lag_messages:sum is not exported by ingest",
        (),
    ),
    (
        "a panel for a service that does not exist",
        edit(
            "deploy/grafana/hotline-classifier.json",
            'hotline_dependency_up{service=\\"classifier\\"}',
            'hotline_dependency_up{service=\\"clasifier\\"}',
        ),
        "promql",
        "hotline_dependency_up: 'clasifier' is not a service",
        (),
    ),
    (
        # The mapping comes from the code: the classifier's agent once set no consumer lag, so
        # its panels stayed empty and the lag alert could not fire for it.
        "the classifier's code no longer setting the consumer lag",
        edit(
            "services/classifier/src/hotline_classifier/app.py",
            "CONSUMER_LAG",
            "SOME_OTHER_GAUGE",
            count=-1,
        ),
        "promql",
        "panel 'Consumer lag by topic' (A): hotline_consumer_lag_messages is not exported by "
        "classifier",
        (),
    ),
    (
        "a dashboard query that does not parse",
        edit(
            "deploy/grafana/hotline-ingest.json",
            "(rate(hotline_ingest_accepted_total[$__rate_interval])) * 60",
            "(rate(hotline_ingest_accepted_total[$__rate_interval]) * 60",
        ),
        "promql",
        "does not parse",
        (),
    ),
    (
        "a rule promtool rejects",
        edit("deploy/prometheus/rules.yml", "for: 10m", "for: ten minutes"),
        "promtool",
        "promtool check rules",
        (),
    ),
    (
        "an alert whose runbook section is gone",
        edit("deploy/README.md", "### HotlineServiceDown", "### Service down"),
        "runbooks",
        "no section #hotlineservicedown",
        (),
    ),
    (
        "rules changed without regenerating the PrometheusRule",
        edit("deploy/prometheus/rules.yml", "for: 2m", "for: 3m"),
        "generated",
        "prometheusrule.yaml is out of date",
        (),
    ),
    (
        "a needed network flow removed",
        drop_policy("ingress-controller-to-ingest"),
        "network",
        "ingress controller -> ingest:8001",
        ("prod",),
    ),
    (
        "the ingress controller cut off from the console",
        drop_policy("ingress-controller-to-console"),
        "network",
        "ingress controller -> console:8005",
        ("prod",),
    ),
    (
        "the call-taker form cut off from ingest",
        drop_policy("console-to-ingest"),
        "network",
        "console -> ingest:8001",
        ("prod",),
    ),
    (
        "the console's egress to ingest removed",
        edit(
            f"{K8S}/base/networkpolicies.yaml",
            "    - to:\n        - podSelector:\n            matchLabels:\n"
            "              app.kubernetes.io/name: ingest\n      ports:\n"
            "        - protocol: TCP\n          port: 8001\n",
            "",
        ),
        "network",
        "console -> ingest:8001",
        ("dev",),
    ),
    (
        "a flow that must stay closed opened",
        edit(f"{K8S}/base/networkpolicies.yaml", "              - 10.0.0.0/8\n", ""),
        "network",
        "should deny: notifier -> cluster-private 10.0.0.1:443",
        ("prod",),
    ),
    (
        "example secrets in prod",
        edit(
            f"{K8S}/overlays/prod/kustomization.yaml",
            "  - ../../components/high-availability\n",
            "  - ../../components/high-availability\n  - ../../components/example-secrets\n",
        ),
        "overlays",
        "prod only references them",
        ("prod",),
    ),
    (
        "a Dockerfile COPY of a path that does not exist",
        edit(
            "Dockerfile",
            "COPY services/ingest services/ingest",
            "COPY services/ingester services/ingest",
        ),
        "dockerfile",
        "COPY services/ingester does not exist",
        (),
    ),
    (
        "the provider sandbox in prod",
        edit(
            f"{K8S}/overlays/prod/kustomization.yaml",
            "  - ../../components/high-availability\n",
            "  - ../../components/high-availability\n  - ../../components/provider-sandbox\n",
        ),
        "sandbox",
        "[prod] renders the provider sandbox (Deployment/sandbox)",
        ("prod",),
    ),
    (
        "prod's notifier pointed at the sandbox",
        edit(
            f"{K8S}/overlays/prod/kustomization.yaml",
            "NOTIFIER_VIBER_BASE_URL=https://chatapi.viber.com",
            "NOTIFIER_VIBER_BASE_URL=http://sandbox.hotline.svc:8009/viber",
        ),
        "sandbox",
        "points at the provider sandbox in production",
        ("prod",),
    ),
    (
        "a real provider left to the settings default (localhost) in prod",
        edit(
            f"{K8S}/overlays/prod/kustomization.yaml",
            "      - NOTIFIER_TELEGRAM_BASE_URL=https://api.telegram.org\n",
            "",
        ),
        "sandbox",
        "NOTIFIER_TELEGRAM_BASE_URL is not set",
        ("prod",),
    ),
    (
        "dev without the sandbox: the notifier sends to 127.0.0.1",
        edit(
            f"{K8S}/overlays/dev/kustomization.yaml", "  - ../../components/provider-sandbox\n", ""
        ),
        "sandbox",
        "NOTIFIER_TWILIO_BASE_URL=http://127.0.0.1:8009/twilio (the settings default) points at "
        "localhost",
        ("dev",),
    ),
    (
        "one provider endpoint not pointed at the sandbox in dev",
        edit(
            f"{SANDBOX}/kustomization.yaml",
            "NOTIFIER_WHATSAPP_BASE_URL=http://sandbox.hotline.svc:8009/graph",
            "NOTIFIER_WHATSAPP_BASE_URL=http://sandbox.hotline.svc:8009/whatsapp",
        ),
        "sandbox",
        "NOTIFIER_WHATSAPP_BASE_URL='http://sandbox.hotline.svc:8009/whatsapp', but the sandbox",
        ("dev",),
    ),
    (
        "the notifier's SMTP with TLS against the sandbox",
        edit(
            f"{SANDBOX}/kustomization.yaml",
            "NOTIFIER_SMTP_STARTTLS=false",
            "NOTIFIER_SMTP_STARTTLS=true",
        ),
        "sandbox",
        "NOTIFIER_SMTP_STARTTLS is on",
        ("dev",),
    ),
    (
        "a sandbox credential that is not the notifier's",
        edit(
            f"{SANDBOX}/sandbox.yaml",
            "                  key: NOTIFIER_VIBER_AUTH_TOKEN\n",
            "                  key: NOTIFIER_TWILIO_AUTH_TOKEN\n",
        ),
        "sandbox",
        "SANDBOX_VIBER_AUTH_TOKEN differs from the notifier's NOTIFIER_VIBER_AUTH_TOKEN",
        ("dev",),
    ),
    (
        "the sandbox with service links (SANDBOX_PORT=tcp://...)",
        edit(f"{SANDBOX}/sandbox.yaml", "enableServiceLinks: false", "enableServiceLinks: true"),
        "sandbox",
        "enableServiceLinks must be false",
        ("dev",),
    ),
    (
        "the sandbox's SMTP port not the one it listens on",
        edit(f"{SANDBOX}/sandbox.yaml", "containerPort: 8025", "containerPort: 2525"),
        "sandbox",
        "container port 'smtp' is 2525, the sandbox listens on 8025",
        ("dev",),
    ),
    (
        "a sandbox env var its settings do not read",
        edit(f"{SANDBOX}/sandbox.yaml", "name: SANDBOX_MAX_RECORDS", "name: SANDBOX_MAX_RECORD"),
        "env",
        "env SANDBOX_MAX_RECORD is not read by SandboxSettings",
        ("dev",),
    ),
    (
        "the notifier cut off from the sandbox",
        drop_sandbox_policy("notifier-to-sandbox"),
        "network",
        "block a needed flow: notifier -> sandbox:8009",
        ("dev",),
    ),
    (
        "the sandbox open to every namespace",
        edit(
            f"{SANDBOX}/networkpolicies.yaml",
            "    - from:\n        - podSelector:\n            matchLabels:\n"
            "              app.kubernetes.io/name: notifier\n",
            "    - from:\n        - namespaceSelector: {}\n",
        ),
        "network",
        "should deny: ingress controller -> sandbox:8009",
        ("dev",),
    ),
    (
        "the sandbox image built on the build stage",
        edit("Dockerfile", "FROM runtime AS sandbox", "FROM build-sandbox AS sandbox"),
        "dockerfile",
        "Dockerfile target sandbox: must build FROM runtime",
        (),
    ),
    (
        "the sandbox image without its SMTP port",
        edit("Dockerfile", "EXPOSE 8009 8025", "EXPOSE 8009"),
        "dockerfile",
        "Dockerfile target sandbox: EXPOSE ['8009'] is not its ports [8009, 8025]",
        (),
    ),
    (
        "a dashboard without its data-source variable",
        drop_datasource_variable,
        "dashboards",
        "no Prometheus data-source variable",
        (),
    ),
]


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str, tuple[str, ...]], list[str]]:
    """One untouched copy, each check run once on it: the copy must pass before breaking it
    means anything."""
    root = tmp_path_factory.mktemp("pristine")
    copy_tree(root)
    suites: dict[tuple[str, ...], Suite] = {}
    results: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    def problems(check: str, overlays: tuple[str, ...]) -> list[str]:
        if (check, overlays) not in results:
            suite = suites.setdefault(overlays, Suite(root=root, overlays=overlays))
            results[check, overlays] = run(suite, check)
        return results[check, overlays]

    return problems


@pytest.fixture(autouse=True)
def _shared_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    # The copies live in a temporary directory; the CRDs stay in the real shared/.
    monkeypatch.setenv("HOTLINE_SHARED_DIR", str(shared_dir()))


@pytest.mark.parametrize(
    ("case", "breakage", "check", "expected", "overlays"), CASES, ids=[c[0] for c in CASES]
)
def test_breakage_is_caught(
    tmp_path: Path,
    pristine: Callable[[str, tuple[str, ...]], list[str]],
    case: str,
    breakage: Callable[[Path], None],
    check: str,
    expected: str,
    overlays: tuple[str, ...],
) -> None:
    overlays = overlays or ("dev",)
    assert not pristine(check, overlays), f"the untouched copy should pass {check}"
    copy_tree(tmp_path)
    breakage(tmp_path)
    problems = run(Suite(root=tmp_path, overlays=overlays), check)
    assert any(expected in p for p in problems), (
        f"{case}: expected a problem containing {expected!r}, got:\n" + "\n".join(problems)
    )


def test_generated_files_are_rewritten(tmp_path: Path) -> None:
    from deploy.check import generate

    copy_tree(tmp_path)
    topics = tmp_path / K8S / "components/kafka/topics.yaml"
    topics.write_text(re.sub(r"partitions: 6", "partitions: 5", topics.read_text()))
    assert generate.stale(tmp_path)
    assert topics in generate.write(tmp_path)
    assert not generate.stale(tmp_path)
