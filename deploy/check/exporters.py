"""Which service exports which metric series, read from the code without running it.

A query or panel that selects one service (`hotline_consumer_lag_messages{service="classifier"}`)
stays empty, and an alert on it never fires, when that service's code never sets the metric:
the metric exists (another service exports it), so the name check alone passes.

* A service exports every metric of its own module, `hotline_<svc>.metrics`.
* It exports a shared metric (`hotline.metrics`) when its code sets it, directly or through the
  shared library: every name the service imports from `hotline.*` brings the metrics that the
  imported function or class refers to, following the library's references between its
  top-level definitions (a service that runs a `ConsumerWorker` gets the runner's consumer
  metrics; one that only borrows `make_dead_letter` from the same module does not). A reference
  counts as a use, so this errs towards "exports" (it never invents a missing one).

The shared code labels these metrics with the name of the service running it
(`RunnerConfig.service`, `Publisher`'s service, the HTTP middleware's), which is what a
`service="..."` matcher selects.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.check.catalog import Metric

LIBRARY = "hotline"
SHARED_METRICS = "hotline.metrics"

Ref = tuple[str, str]
"""(module, top-level name) in the shared library."""


@dataclass
class _Module:
    imports: dict[str, str] = field(default_factory=dict)
    """Local name → the dotted path it stands for, for each import from the library anywhere in
    the module (`Publisher` → `hotline.kafka.Publisher`, `m` → `hotline.metrics`)."""
    defs: dict[str, set[str]] = field(default_factory=dict)
    """Top-level function, class or assignment → the names it uses (`x`, `x.y.z`)."""


def _is_library(module: str | None) -> bool:
    return module is not None and (module == LIBRARY or module.startswith(f"{LIBRARY}."))


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` for an attribute chain on a plain name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _used_names(node: ast.AST) -> set[str]:
    """Every name, and every attribute chain on a name, that the code mentions."""
    used: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name | ast.Attribute):
            name = _dotted(sub)
            if name:
                used.add(name)
    return used


def _parse(source: str, filename: str) -> _Module:
    tree = ast.parse(source, filename)
    mod = _Module()
    for node in ast.walk(tree):  # imports inside functions count (the library defers some)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _is_library(node.module):
            for alias in node.names:
                mod.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_library(alias.name):
                    top = alias.name.split(".")[0]  # `import a.b` binds `a`
                    mod.imports[alias.asname or top] = alias.name if alias.asname else top
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            mod.defs[node.name] = _used_names(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    mod.defs[target.id] = _used_names(node.value)
    return mod


def _module_name(package_dir: Path, path: Path) -> str:
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def library_dir(root: Path) -> Path:
    """The shared library's sources in `root`, or the installed ones (the checks' test copies
    carry only the services' code)."""
    in_tree = root / "libs" / LIBRARY / "src" / LIBRARY
    if in_tree.is_dir():
        return in_tree
    spec = importlib.util.find_spec(LIBRARY)
    assert spec is not None and spec.submodule_search_locations, "hotline is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def _module_metrics(module: str) -> dict[str, Metric]:
    """A metrics module's variables → the metric each holds."""
    from prometheus_client import metrics as pm

    mod = importlib.import_module(module)
    return {
        var: Metric(value._name, str(value._type), frozenset(value._labelnames), module)
        for var, value in vars(mod).items()
        if isinstance(value, pm.MetricWrapperBase)
    }


class SharedMetricUse:
    """Which `hotline.metrics` variables the definitions of the shared library set."""

    def __init__(self, lib_dir: Path) -> None:
        self.modules = {
            _module_name(lib_dir, path): _parse(path.read_text(), str(path))
            for path in sorted(lib_dir.rglob("*.py"))
        }
        self.metric_vars = set(_module_metrics(SHARED_METRICS))

    def _ref(self, path: str) -> Ref | None:
        """`hotline.metrics.CONSUMER_LAG.labels` → (`hotline.metrics`, `CONSUMER_LAG`): the
        longest library module the path starts with, and the name in it."""
        parts = path.split(".")
        for i in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:i])
            if module in self.modules:
                return module, parts[i]
        return None

    def refs(self, module: str, mod: _Module, used: Iterable[str]) -> set[Ref]:
        """What the names a piece of code uses stand for: what they were imported as, or
        definitions local to `module` (a library module)."""
        found: set[Ref] = set()
        for name in used:
            head, dot, rest = name.partition(".")
            ref: Ref | None = None
            if head in mod.imports:
                ref = self._ref(mod.imports[head] + dot + rest)
            elif head in mod.defs and module in self.modules:
                ref = (module, head)
            if ref is not None:
                found.add(ref)
        return found

    def metrics_set_by(self, start: Iterable[Ref]) -> set[str]:
        """The metric variables reachable from `start`, following each definition's references
        (and re-exports) through the library."""
        found: set[str] = set()
        seen: set[Ref] = set()
        todo = list(start)
        while todo:
            ref = todo.pop()
            if ref in seen:
                continue
            seen.add(ref)
            module, name = ref
            mod = self.modules[module]
            if module == SHARED_METRICS and name in self.metric_vars:
                found.add(name)
            elif name in mod.defs:
                todo += self.refs(module, mod, mod.defs[name])
            elif name in mod.imports:  # a re-export
                target = self._ref(mod.imports[name])
                if target is not None:
                    todo.append(target)
        return found


def service_metric_vars(use: SharedMetricUse, service_dir: Path) -> set[str]:
    """The shared metric variables a service's code sets (through the library or directly)."""
    start: set[Ref] = set()
    for path in sorted(service_dir.rglob("*.py")):
        source = path.read_text()
        mod = _parse(source, str(path))
        start |= use.refs("", mod, _used_names(ast.parse(source, str(path))))
    return use.metrics_set_by(start)


def metric_exporters(root: Path, services: Iterable[str]) -> dict[str, frozenset[str]]:
    """Exposed series name (`x_total`, `x_bucket`, ...) → the services whose code exports it."""
    use = SharedMetricUse(library_dir(root))
    shared = _module_metrics(SHARED_METRICS)
    exporters: dict[str, set[str]] = {}
    for svc in services:
        metrics: list[Metric] = []
        sources = root / "services" / svc / "src" / f"hotline_{svc}"
        if sources.is_dir():
            metrics += [shared[var] for var in service_metric_vars(use, sources)]
        else:  # no code to read: assume every shared metric rather than report them all
            metrics += list(shared.values())
        try:
            metrics += list(_module_metrics(f"hotline_{svc}.metrics").values())
        except ModuleNotFoundError as exc:
            if exc.name not in (f"hotline_{svc}.metrics", f"hotline_{svc}"):
                raise
        for metric in metrics:
            for series in metric.series():
                exporters.setdefault(series, set()).add(svc)
    return {series: frozenset(svcs) for series, svcs in exporters.items()}
