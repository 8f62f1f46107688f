"""Small pieces of the checks, tested directly."""

from __future__ import annotations

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
