"""Small pieces of the checks, tested directly."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from deploy.check import kube, promql, static
from deploy.check.consistency import selector_matches


def test_int_or_string_and_nullable_follow_kubernetes() -> None:
    schema = kube.to_json_schema(
        {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
    )
    ok = {"port": "http", "note": None, "free": {"anything": 1}}
    jsonschema.validate({**ok, "port": 8080}, schema)
    jsonschema.validate(ok, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**ok, "port": 1.5}, schema)
    with pytest.raises(jsonschema.ValidationError, match="unexpected"):
        jsonschema.validate({**ok, "typo": 1}, schema)


def test_dockerignore_matching() -> None:
    patterns = [".git", "**/__pycache__", "services/*/tests", "deploy", "!deploy/keep"]
    assert static.ignored("deploy/k8s/base", patterns)
    assert not static.ignored("deploy/keep", patterns)
    assert static.ignored("services/ingest/tests/test_x.py", patterns)
    assert static.ignored("libs/hotline/src/hotline/__pycache__/x.pyc", patterns)
    assert not static.ignored("services/ingest/src", patterns)


def test_github_anchor_slugs() -> None:
    assert static.slug("HotlineServiceDown") == "hotlineservicedown"
    assert static.slug("Scaling one service") == "scaling-one-service"
    assert static.slug("MongoDB in production") == "mongodb-in-production"


def test_label_selectors() -> None:
    labels = {"app.kubernetes.io/name": "ingest", "app.kubernetes.io/component": "pipeline"}
    assert selector_matches({"matchLabels": {"app.kubernetes.io/name": "ingest"}}, labels)
    assert selector_matches(
        {
            "matchExpressions": [
                {"key": "app.kubernetes.io/name", "operator": "In", "values": ["ingest", "x"]}
            ]
        },
        labels,
    )
    assert not selector_matches(
        {
            "matchExpressions": [
                {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["ingest"]}
            ]
        },
        labels,
    )


def test_grafana_variables_are_substituted_before_parsing() -> None:
    text = (
        "sum by (route) (rate(hotline_http_requests_total"
        '{service="$svc", route=~"${route:regex}"}[$__rate_interval]))'
    )
    sels, error = promql.selectors(promql.Expr("x", text, promql.substitute_grafana(text)))
    assert error is None
    assert [(s.name, s.labels) for s in sels] == [
        ("hotline_http_requests_total", {"service", "route"})
    ]


def test_a_service_exports_the_shared_metrics_its_code_reaches(tmp_path: Path) -> None:
    """Through the shared library, following what each imported name refers to: running a
    `ConsumerWorker` brings the runner's consumer metrics; borrowing `make_dead_letter` from the
    same module brings none; a metric set directly counts too."""
    from deploy.check.exporters import SharedMetricUse, library_dir, service_metric_vars
    from deploy.check.paths import REPO

    use = SharedMetricUse(library_dir(REPO))

    def exported(source: str) -> set[str]:
        pkg = tmp_path / f"svc{len(list(tmp_path.iterdir()))}"
        pkg.mkdir()
        (pkg / "main.py").write_text(source)
        return service_metric_vars(use, pkg)

    worker = exported("from hotline.runner import ConsumerWorker\nConsumerWorker(**{})\n")
    assert {"CONSUMER_LAG", "PROCESSING_SECONDS", "HANDLER_RETRIES", "DEADLETTERS"} <= worker
    borrowed = exported("from hotline.runner import make_dead_letter\nmake_dead_letter()\n")
    assert borrowed == set()
    direct = exported(
        "from hotline.metrics import CONSUMER_LAG\n"
        "def export(lag: int) -> None:\n"
        "    CONSUMER_LAG.labels('svc', 'topic', '0').set(lag)\n"
    )
    assert direct == {"CONSUMER_LAG"}
    assert exported("import hotline.metrics as m\nm.HANDLER_RETRIES.labels().inc()\n") == {
        "HANDLER_RETRIES"
    }
    assert exported("import hotline.kafka\nhotline.kafka.Publisher(**{})\n") == {
        "PRODUCED",
        "PRODUCER_RENEWALS",
    }
    assert exported("import hotline.metrics\n") == set()  # imported, never used


def test_a_selector_names_services_by_value_or_by_a_list_of_names() -> None:
    def picked(expr: str) -> list[str]:
        sels, error = promql.selectors(promql.Expr("t", expr, promql.substitute_grafana(expr)))
        assert error is None
        return promql._picked_services(sels[0])

    assert picked('x{service="classifier"}') == ["classifier"]
    assert picked('x{service=~"dispatcher|notifier"}') == ["dispatcher", "notifier"]
    assert picked('x{job="ingest", service="ingest"}') == ["ingest"]
    assert picked('x{service=~".+"}') == []  # a pattern: no service in particular
    assert picked('x{service=~"$service"}') == []  # a Grafana variable
    assert picked('x{service!="ingest"}') == []
