"""What the services export and read, taken from their code.

* Metrics: import `hotline.metrics` and each service's `hotline_<svc>.metrics`, then read
  prometheus_client's registry (a counter `x` is exposed as `x_total`, a histogram as
  `x_bucket`, `x_sum`, `x_count`). A service whose metrics module does not exist yet falls back
  to the names docs/architecture.md lists for it, and the check reports that it did.
* Settings: each service's pydantic settings class (a `HotlineSettings` subclass in
  `hotline_<svc>.settings`): env prefix + field names, or a field's validation aliases.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, AliasPath, SecretStr
from pydantic.fields import FieldInfo

from deploy.check.paths import REPO, SERVICES

# Series Prometheus makes itself, or that the rules create.
BUILTIN_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "ALERTS",
    "ALERTS_FOR_STATE",
}
# Labels a scrape adds (Prometheus Operator target labels included) and the histogram's `le`.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "endpoint", "service", "le"}


@dataclass
class Metric:
    name: str
    kind: str  # counter, gauge, histogram, summary, info, unknown
    labels: frozenset[str]
    source: str  # module name, or "docs/architecture.md"

    def series(self) -> dict[str, frozenset[str]]:
        """Exposed series names → their labels."""
        if self.kind == "counter":
            return {f"{self.name}_total": self.labels, f"{self.name}_created": self.labels}
        if self.kind == "histogram":
            return {
                f"{self.name}_bucket": self.labels | {"le"},
                f"{self.name}_sum": self.labels,
                f"{self.name}_count": self.labels,
                f"{self.name}_created": self.labels,
            }
        if self.kind == "summary":
            return {
                self.name: self.labels | {"quantile"},
                f"{self.name}_sum": self.labels,
                f"{self.name}_count": self.labels,
            }
        if self.kind == "info":
            return {f"{self.name}_info": self.labels}
        if self.kind == "unknown":  # from the docs: accept both shapes
            return {
                self.name: self.labels,
                **{f"{self.name}_{s}": self.labels | {"le"} for s in ("bucket", "sum", "count")},
            }
        return {self.name: self.labels}


@dataclass
class MetricCatalog:
    series: dict[str, frozenset[str]] = field(default_factory=dict)
    by_module: dict[str, list[str]] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    """Services whose metrics module is missing, so docs/architecture.md stood in."""

    def add(self, metric: Metric) -> None:
        for name, labels in metric.series().items():
            self.series[name] = self.series.get(name, frozenset()) | labels
        self.by_module.setdefault(metric.source, []).append(metric.name)


def _registry_metrics(module: str) -> list[Metric]:
    mod = importlib.import_module(module)
    from prometheus_client import metrics as pm

    found = []
    for value in vars(mod).values():
        if isinstance(value, pm.MetricWrapperBase):
            name = value._name  # the family name (a counter's without `_total`)
            found.append(Metric(name, str(value._type), frozenset(value._labelnames), module))
    return found


DOC_METRIC = re.compile(r"`(hotline_[a-z0-9_]+)(?:\{([a-z_,]+)\})?`(\s*\(histogram\))?")


def architecture_metrics(doc: Path = REPO / "docs" / "architecture.md") -> list[Metric]:
    """The metric names the architecture document promises, with their labels."""
    text = doc.read_text()
    section = text.split("## Metric names", 1)[-1].split("\n## ", 1)[0]
    metrics = []
    for name, labels, hist in DOC_METRIC.findall(section):
        kind = "histogram" if hist or name.endswith("_seconds") else "unknown"
        if name.endswith("_total"):
            kind, name = "counter", name[: -len("_total")]
        metrics.append(
            Metric(name, kind, frozenset(filter(None, labels.split(","))), "docs/architecture.md")
        )
    return metrics


def metric_catalog() -> MetricCatalog:
    catalog = MetricCatalog()
    for metric in _registry_metrics("hotline.metrics"):
        catalog.add(metric)
    documented = architecture_metrics()
    for svc in SERVICES:
        module = f"hotline_{svc}.metrics"
        try:
            metrics = _registry_metrics(module)
        except ModuleNotFoundError as exc:
            if exc.name not in (module, f"hotline_{svc}"):
                raise
            catalog.fallbacks.append(svc)
            metrics = [m for m in documented if m.name.startswith(f"hotline_{svc}_")]
        for metric in metrics:
            catalog.add(metric)
    return catalog


# --------------------------------------------------------------------------- settings


@dataclass
class EnvVar:
    name: str  # upper case: pydantic-settings matches case-insensitively
    field: str
    required: bool
    secret: bool
    default: Any


@dataclass
class ServiceSettings:
    service: str
    cls_name: str
    prefix: str
    env: dict[str, EnvVar]
    settings_cls: type[Any]

    def default(self, field_name: str) -> Any:
        for var in self.env.values():
            if var.field == field_name:
                return var.default
        return None


def _env_names(prefix: str, name: str, info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    if isinstance(alias, str):
        return [alias.upper()]
    if isinstance(alias, AliasChoices):
        # pydantic-settings reads every string choice as an env name; the python name choice
        # (e.g. "environment") is one too, harmlessly.
        return [c.upper() for c in alias.choices if isinstance(c, str)]
    if isinstance(alias, AliasPath):
        return [str(alias.path[0]).upper()]
    if info.alias:
        return [info.alias.upper()]
    return [f"{prefix}{name}".upper()]


def _is_secret(info: FieldInfo) -> bool:
    ann = info.annotation
    text = repr(ann)
    return ann is SecretStr or "SecretStr" in text


def service_settings(svc: str, base: type[Any] | None = None) -> ServiceSettings | None:
    """The settings of one service, or None while its settings module does not exist.

    The settings class is the module's one subclass of `base`: HotlineSettings for the services,
    pydantic-settings' BaseSettings for the dev-only sandbox (it does not use the shared library).
    """
    from hotline.settings import HotlineSettings

    base = base or HotlineSettings
    module = f"hotline_{svc}.settings"
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name in (module, f"hotline_{svc}"):
            return None
        raise
    classes = [
        v
        for v in vars(mod).values()
        if isinstance(v, type) and issubclass(v, base) and v is not base and v.__module__ == module
    ]
    if len(classes) != 1:
        raise RuntimeError(
            f"{module} should define exactly one {base.__name__} subclass, found {classes}"
        )
    cls = classes[0]
    prefix = str(cls.model_config.get("env_prefix", ""))
    env: dict[str, EnvVar] = {}
    for name, info in cls.model_fields.items():
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        for env_name in _env_names(prefix, name, info):
            env[env_name] = EnvVar(env_name, name, info.is_required(), _is_secret(info), default)
    return ServiceSettings(svc, cls.__name__, prefix, env, cls)


def dev_service_settings(svc: str) -> ServiceSettings | None:
    """The settings of a dev-only service (paths.DEV_SERVICES): a plain BaseSettings class."""
    from pydantic_settings import BaseSettings

    return service_settings(svc, BaseSettings)


def shared_env() -> dict[str, EnvVar]:
    """The variables every service reads (HotlineSettings' own fields)."""
    from hotline.settings import HotlineSettings

    prefix = str(HotlineSettings.model_config.get("env_prefix", ""))
    env: dict[str, EnvVar] = {}
    for name, info in HotlineSettings.model_fields.items():
        if info.validation_alias is None:
            continue  # service_name: each service sets its own, not an env var
        for env_name in _env_names(prefix, name, info):
            env[env_name] = EnvVar(env_name, name, False, _is_secret(info), info.get_default())
    return env


ARCH_ROW = re.compile(r"^\| (\w+) \| `hotline_(\w+)` \| (\d+) \(`(\w+)`\) \| `(\w+)` \|", re.M)


def architecture_ports(
    doc: Path = REPO / "docs" / "architecture.md",
) -> dict[str, tuple[int, str, str]]:
    """service → (port, port env var, env prefix) from the architecture table."""
    return {m[0]: (int(m[2]), m[3], m[4]) for m in ARCH_ROW.findall(doc.read_text())}
