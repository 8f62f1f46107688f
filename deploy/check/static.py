"""Checks on files rather than rendered objects: the Dockerfile, the dashboards' shape, the
alerts' runbook links, and promtool on the rules and the local Prometheus config."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from deploy.check.tools import promtool

# --------------------------------------------------------------------------- Dockerfile

RUNTIME_UID = 10001


def dockerfile_stages(text: str) -> dict[str, list[tuple[str, str]]]:
    """stage name → its instructions (keyword, arguments), line continuations joined."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    logical = re.sub(r"\\\n", " ", text)
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            assert m is not None
            current = []
            stages[m.group(2) or f"stage{len(stages)}"] = current
            current.append(("FROM", m.group(1)))
        elif current is not None:
            current.append((keyword, args.strip()))
    return stages


def dockerignore_patterns(root: Path) -> list[str]:
    path = root / ".dockerignore"
    if not path.exists():
        return []
    return [
        ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rules, close enough for our patterns: last match wins, `!` re-includes, a
    pattern matching a parent directory excludes what is below it."""
    result = False
    parts = rel.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.strip("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, pat) or (
                pat.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pat[3:])
            ):
                result = not negate
                break
    return result


def check_dockerfile(
    root: Path,
    services: tuple[str, ...],
    env_names: dict[str, set[str] | None] | None = None,
    dev_targets: dict[str, tuple[int, ...]] | None = None,
) -> list[str]:
    """The Dockerfile: slim base, COPY sources present and not ignored, every workspace member's
    metadata copied, a non-root runtime without build tools, one target per service that
    installs that service's locked dependencies and runs `python -m hotline_<svc>.main`, whose
    ENV names the service reads and whose EXPOSE is its port. `dev_targets` (the dev-only
    sandbox → the ports it must EXPOSE) are held to the same rules."""
    from deploy.check.catalog import architecture_ports

    ports = architecture_ports()
    problems: list[str] = []
    path = root / "Dockerfile"
    if not path.exists():
        return ["Dockerfile is missing"]
    stages = dockerfile_stages(path.read_text())
    patterns = dockerignore_patterns(root)
    if not patterns:
        problems.append(".dockerignore is missing or empty")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", path.read_text(), re.M))
    base = args.get("PYTHON_IMAGE", "")
    if not base.startswith("python:3.11-slim"):
        problems.append(f"Dockerfile: base image {base!r} is not python:3.11-slim*")
    # Every COPY from the build context names something that exists and is not ignored.
    for stage, instructions in stages.items():
        for kw, a in instructions:
            if kw != "COPY" or "--from=" in a:
                continue
            tokens = [t for t in a.split() if not t.startswith("--")]
            for src in tokens[:-1]:
                matches = list(root.glob(src)) if any(ch in src for ch in "*?[") else [root / src]
                if not any(m.exists() for m in matches):
                    problems.append(f"Dockerfile stage {stage}: COPY {src} does not exist")
                elif ignored(src, patterns):
                    problems.append(
                        f"Dockerfile stage {stage}: COPY {src} is excluded by .dockerignore"
                    )
    # Every workspace member's metadata is in the build stage (uv export --frozen needs it).
    copied = {a.split()[0] for k, a in stages.get("build", []) if k == "COPY"}
    members = [
        *sorted(root.glob("services/*/pyproject.toml")),
        root / "libs/hotline/pyproject.toml",
    ]
    for member in members:
        rel = str(member.relative_to(root))
        if rel not in copied:
            problems.append(f"Dockerfile stage build: does not COPY {rel} (a workspace member)")
    runtime = stages.get("runtime", [])
    if not runtime:
        problems.append("Dockerfile: no `runtime` stage")
    runtime_text = " ".join(a for _, a in runtime)
    for tool in ("build-essential", "gcc", "apt-get install", "pip install", "uv "):
        if tool in runtime_text:
            problems.append(f"Dockerfile runtime stage installs or runs {tool.strip()!r}")
    users = [a for k, a in runtime if k == "USER"]
    if not users or users[-1].split(":")[0] in ("0", "root"):
        problems.append("Dockerfile runtime stage does not switch to a non-root USER")
    elif users[-1].split(":")[0] != str(RUNTIME_UID):
        problems.append(f"Dockerfile runtime USER {users[-1]} differs from runAsUser {RUNTIME_UID}")
    dev_targets = dev_targets or {}
    for svc in [*services, *dev_targets]:
        target = stages.get(svc)
        if target is None:
            problems.append(f"Dockerfile: no target {svc}")
            continue
        if target[0] != ("FROM", "runtime"):
            problems.append(
                f"Dockerfile target {svc}: must build FROM runtime (found {target[0][1]})"
            )
        copies = [a for k, a in target if k == "COPY"]
        if f"--from=build-{svc} /opt/venv /opt/venv" not in copies:
            problems.append(f"Dockerfile target {svc}: does not COPY --from=build-{svc} /opt/venv")
        build = stages.get(f"build-{svc}", [])
        if not any(
            f"--package hotline-{svc}" in a and "uv export" in a for k, a in build if k == "RUN"
        ):
            problems.append(
                f"Dockerfile stage build-{svc}: dependencies not exported from uv.lock for "
                f"hotline-{svc}"
            )
        entry = [a for k, a in target if k == "ENTRYPOINT"]
        want = ["python", "-m", f"hotline_{svc}.main"]
        if not entry or json.loads(entry[-1]) != want:
            problems.append(f"Dockerfile target {svc}: ENTRYPOINT should be {json.dumps(want)}")
        exposed = [a for k, a in target if k == "EXPOSE"]
        if svc in dev_targets:
            got = sorted(int(p.split("/")[0]) for a in exposed for p in a.split())
            if got != sorted(dev_targets[svc]):
                problems.append(
                    f"Dockerfile target {svc}: EXPOSE {exposed} is not its ports "
                    f"{sorted(dev_targets[svc])}"
                )
        elif svc in ports and exposed != [str(ports[svc][0])]:
            problems.append(
                f"Dockerfile target {svc}: EXPOSE {exposed} is not its port {ports[svc][0]}"
            )
        known = (env_names or {}).get(svc)
        for env_args in [a for k, a in target if k == "ENV"]:
            for key in re.findall(r"(\w+)=", env_args):
                if known is not None and key.upper() not in known:
                    problems.append(
                        f"Dockerfile target {svc}: ENV {key} is not read by its settings"
                    )
        module = root / "services" / svc / "src" / f"hotline_{svc}" / "main.py"
        if not module.exists():
            problems.append(f"Dockerfile target {svc}: {module.relative_to(root)} does not exist")
    return problems


# --------------------------------------------------------------------------- dashboards


def check_dashboards(root: Path) -> list[str]:
    """Each dashboard: a Prometheus data-source variable, every panel and target using it,
    unique uid, panels laid out inside the 24-column grid."""
    problems: list[str] = []
    uids: dict[str, str] = {}
    paths = sorted((root / "deploy" / "grafana").glob("*.json"))
    if not paths:
        return ["deploy/grafana has no dashboards"]
    for path in paths:
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}: not JSON: {exc}")
            continue
        where = path.name
        uid = doc.get("uid")
        if not uid:
            problems.append(f"{where}: no uid")
        elif uid in uids:
            problems.append(f"{where}: uid {uid} also used by {uids[uid]}")
        else:
            uids[uid] = where
        variables = doc.get("templating", {}).get("list", [])
        ds_vars = [
            v["name"]
            for v in variables
            if v.get("type") == "datasource" and v.get("query") == "prometheus"
        ]
        if not ds_vars:
            problems.append(f"{where}: no Prometheus data-source variable")
            continue
        allowed = {f"${{{n}}}" for n in ds_vars} | {f"${n}" for n in ds_vars}

        def ds_ok(ds: Any, allowed: set[str] = allowed) -> bool:
            return isinstance(ds, dict) and ds.get("uid") in allowed

        for var in variables:
            if var.get("type") == "query" and not ds_ok(var.get("datasource")):
                problems.append(
                    f"{where}: variable ${var.get('name')} does not use the data-source variable"
                )
        for panel in _all_panels(doc.get("panels", [])):
            if panel.get("type") == "row":
                continue
            title = panel.get("title")
            if not ds_ok(panel.get("datasource")):
                problems.append(f"{where}: panel {title!r} does not use the data-source variable")
            for target in panel.get("targets", []):
                if "datasource" in target and not ds_ok(target["datasource"]):
                    problems.append(
                        f"{where}: panel {title!r} target {target.get('refId')} uses another data "
                        "source"
                    )
            if not panel.get("targets"):
                problems.append(f"{where}: panel {title!r} has no query")
            grid = panel.get("gridPos", {})
            if grid.get("x", 0) + grid.get("w", 0) > 24:
                problems.append(f"{where}: panel {title!r} is wider than the grid")
    return problems


def _all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in panels:
        out.append(p)
        out += _all_panels(p.get("panels", []))
    return out


# --------------------------------------------------------------------------- rules


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def check_runbooks(root: Path) -> list[str]:
    """Every alert: severity, summary, description, and a runbook_url naming a section of
    deploy/README.md that exists."""
    readme = root / "deploy" / "README.md"
    anchors = set()
    if readme.exists():
        anchors = {slug(m) for m in re.findall(r"^#{1,6} (.+)$", readme.read_text(), re.M)}
    problems = []
    doc = yaml.safe_load((root / "deploy" / "prometheus" / "rules.yml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            where = f"rules.yml: alert {rule['alert']}"
            ann = rule.get("annotations", {})
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    problems.append(f"{where}: no {key} annotation")
            if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                problems.append(f"{where}: severity label must be critical, warning or info")
            url = ann.get("runbook_url", "")
            if not url.startswith("deploy/README.md#"):
                problems.append(f"{where}: runbook_url should be deploy/README.md#<section>")
            elif url.split("#", 1)[1] not in anchors:
                problems.append(f"{where}: deploy/README.md has no section #{url.split('#', 1)[1]}")
    return problems


def run_promtool(root: Path, prometheus_rule_groups: list[Any] | None = None) -> list[str]:
    """`promtool check rules` on rules.yml (and on the PrometheusRule's groups, as rendered),
    `promtool check config` on the local Prometheus config."""
    tool = str(promtool())
    problems = []
    rules = root / "deploy" / "prometheus" / "rules.yml"
    targets = [("rules", rules)]
    with tempfile.TemporaryDirectory() as tmp:
        if prometheus_rule_groups is not None:
            rendered = Path(tmp) / "prometheusrule-groups.yml"
            rendered.write_text(yaml.safe_dump({"groups": prometheus_rule_groups}))
            targets.append(("rules", rendered))
        targets.append(("config", root / "deploy" / "prometheus" / "prometheus-local.yml"))
        for what, path in targets:
            result = subprocess.run(
                [tool, "check", what, str(path)], capture_output=True, text=True, timeout=60
            )
            if result.returncode != 0:
                out = (result.stdout + result.stderr).strip()
                problems.append(f"promtool check {what} {path.name} failed:\n{out}")
    return problems
