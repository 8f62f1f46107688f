"""Every PromQL expression in the rules and dashboards: parsed, and each metric it names
checked against what the services export (deploy.check.catalog)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from deploy.check.catalog import BUILTIN_SERIES, TARGET_LABELS, MetricCatalog


@dataclass
class Expr:
    where: str  # file and rule/panel, for messages
    text: str  # as written
    promql: str  # Grafana variables substituted


@dataclass
class Selector:
    name: str | None
    labels: set[str]
    where: str
    matchers: list[tuple[str, str, str]] = field(default_factory=list)
    """(label, operator: Equal, NotEqual, Re or NotRe, value) of every label matcher."""


GRAFANA_INTERVALS = re.compile(
    r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}"
)
GRAFANA_VARS = re.compile(
    r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z_][A-Za-z0-9_]*\]\]"
)
LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(.*?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S
)


def substitute_grafana(expr: str) -> str:
    """Grafana's template variables → something PromQL parses: intervals become 5m, other
    variables (they stand inside label matchers' quotes) a plain word."""
    expr = GRAFANA_INTERVALS.sub("5m", expr)
    return GRAFANA_VARS.sub("grafana_variable", expr)


def rule_expressions(rules_file: Path, label: str | None = None) -> Iterator[Expr]:
    doc = yaml.safe_load(rules_file.read_text())
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            where = f"{label or rules_file.name}: {group['name']}/{name}"
            yield Expr(where, rule["expr"], rule["expr"])


def recorded_names(rules_file: Path) -> dict[str, str]:
    """Recording rule name → its expression."""
    doc = yaml.safe_load(rules_file.read_text())
    return {
        rule["record"]: rule["expr"]
        for group in doc.get("groups", [])
        for rule in group.get("rules", [])
        if "record" in rule
    }


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions(path: Path) -> Iterator[Expr]:
    doc = json.loads(path.read_text())
    for panel in _panels(doc.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                where = f"{path.name}: panel {panel.get('title')!r} ({target.get('refId')})"
                yield Expr(where, target["expr"], substitute_grafana(target["expr"]))
    for var in doc.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        where = f"{path.name}: variable ${var.get('name')}"
        m = LABEL_VALUES.match(text)
        if m:
            yield Expr(where, text, substitute_grafana(m.group(1)))
        elif text.startswith("query_result("):
            yield Expr(where, text, substitute_grafana(text[len("query_result(") : -1]))
        elif text.strip():
            yield Expr(where, text, substitute_grafana(text))


def selectors(expr: Expr) -> tuple[list[Selector], str | None]:
    """The vector selectors in an expression, or the parse error."""
    try:
        ast = promql_parser.parse(expr.promql)
    except ValueError as exc:
        return [], f"{expr.where}: does not parse: {exc}\n    {expr.text.strip()}"
    found: list[Selector] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name
            labels = set()
            matchers = []
            for m in node.matchers.matchers:
                if m.name == "__name__" and str(m.op).endswith("Equal"):
                    name = m.value
                elif m.name != "__name__":
                    labels.add(m.name)
                    matchers.append((m.name, str(m.op).rsplit(".", 1)[-1], m.value))
            found.append(Selector(name, labels, expr.where, matchers))
        return True

    promql_parser.walk(ast, visit)
    return found, None


def check_expressions(
    exprs: list[Expr], catalog: MetricCatalog, recorded: dict[str, str]
) -> list[str]:
    """Parse each expression; every metric it selects must be exported (or recorded), and every
    label it matches on must be one of that metric's labels (or a target label)."""
    problems: list[str] = []
    recorded_labels = {name: _labels_in(expr, catalog) for name, expr in recorded.items()}
    for expr in exprs:
        sels, error = selectors(expr)
        if error:
            problems.append(error)
            continue
        for sel in sels:
            if sel.name is None:
                problems.append(
                    f"{expr.where}: selector without a metric name: {expr.text.strip()}"
                )
                continue
            if sel.name in BUILTIN_SERIES:
                continue
            if sel.name in recorded:
                known = recorded_labels[sel.name]
            elif sel.name in catalog.series:
                known = set(catalog.series[sel.name])
            else:
                problems.append(
                    f"{expr.where}: metric {sel.name} is not exported by any service "
                    f"(nor recorded by a rule)"
                )
                continue
            unknown = sel.labels - known - TARGET_LABELS
            if unknown:
                problems.append(
                    f"{expr.where}: {sel.name} has no label(s) {', '.join(sorted(unknown))} "
                    f"(it has: {', '.join(sorted(known)) or 'none'})"
                )
    return problems


def _labels_in(expr: str, catalog: MetricCatalog) -> set[str]:
    """Labels a recording rule's output may carry: those of the series it reads."""
    sels, _ = selectors(Expr("", expr, expr))
    labels: set[str] = set()
    for sel in sels:
        labels |= set(catalog.series.get(sel.name or "", frozenset()))
    return labels


def check_service_lists(exprs: list[Expr], services: tuple[str, ...]) -> list[str]:
    """An `up{job=~"a|b|..."}` that lists services (the HotlineServiceDown alert, the overview's
    "Services up") lists every deployed one: a service missing there can be down unnoticed."""
    problems: list[str] = []
    for expr in exprs:
        try:
            ast = promql_parser.parse(expr.promql)
        except ValueError:
            continue  # check_expressions reports it

        def visit(node: Any, expr: Expr = expr) -> bool:
            if isinstance(node, promql_parser.VectorSelector) and node.name == "up":
                for m in node.matchers.matchers:
                    if (
                        m.name == "job"
                        and m.op == promql_parser.MatchOp.Re
                        and "grafana_variable" not in m.value
                    ):
                        missing = [s for s in services if not re.fullmatch(m.value, s)]
                        if missing:
                            problems.append(
                                f"{expr.where}: up{{job=~{m.value!r}}} leaves out "
                                f"{', '.join(missing)}"
                            )
            return True

        promql_parser.walk(ast, visit)
    return problems


SERVICE_LABELS = ("service", "job")
"""Labels whose value names a service: the services' own `service` label, and the scrape job
(the Kubernetes Service name, the same in prometheus-local.yml)."""
SERVICE_ALTERNATION = re.compile(r"[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)*")


def _picked_services(sel: Selector) -> list[str]:
    """The services a selector asks for by name: `service="a"`, or `service=~"a|b"` (a list of
    names, not a pattern); none when it selects by pattern, by a Grafana variable or not at all."""
    picked: list[str] = []
    for label, op, value in sel.matchers:
        if label not in SERVICE_LABELS or "grafana_variable" in value:
            continue
        if op == "Equal":
            picked.append(value)
        elif op == "Re" and SERVICE_ALTERNATION.fullmatch(value):
            picked += value.split("|")
    return list(dict.fromkeys(picked))


def check_service_exports(
    exprs: list[Expr],
    exporters: dict[str, frozenset[str]],
    recorded: dict[str, str],
    services: tuple[str, ...],
) -> list[str]:
    """A selector that names a service asks for a metric that service's code exports
    (deploy.check.exporters): otherwise its panel stays empty and its alert can never fire,
    although the metric exists elsewhere. A recorded series is exported by the services whose
    series its rule reads."""
    every = dict(exporters)
    for name, text in recorded.items():
        sels, _ = selectors(Expr("", text, text))
        every[name] = frozenset().union(*(exporters.get(s.name or "", frozenset()) for s in sels))
    problems: list[str] = []
    for expr in exprs:
        sels, error = selectors(expr)
        if error:
            continue  # check_expressions reports it
        for sel in sels:
            if sel.name is None or sel.name not in every:
                continue  # builtin, or not exported at all: check_expressions reports it
            for svc in _picked_services(sel):
                if svc not in services:
                    problems.append(f"{expr.where}: {sel.name}: {svc!r} is not a service")
                elif svc not in every[sel.name]:
                    by = ", ".join(sorted(every[sel.name])) or "no service"
                    problems.append(
                        f"{expr.where}: {sel.name} is not exported by {svc} (only by {by})"
                    )
    return problems
