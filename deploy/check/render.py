"""Build the Kustomize overlays into plain objects."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.check.tools import kustomize

Obj = dict[str, Any]


@dataclass
class Rendered:
    """One overlay's output."""

    overlay: str
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind: str, name: str) -> Obj | None:
        for o in self.objects:
            if o.get("kind") == kind and o.get("metadata", {}).get("name") == name:
                return o
        return None


class BuildError(RuntimeError):
    pass


def missing_generator_sources(root: Path) -> list[str]:
    """Files that a configMapGenerator/secretGenerator names but that do not exist (yet).

    The ConfigMaps are generated from the YAML files the services ship; kustomize stops at the
    first missing one with a terse error, so name them all, each with the kustomization.
    """
    missing: list[str] = []
    for kfile in sorted((root / "deploy" / "k8s").rglob("kustomization.yaml")):
        doc = yaml.safe_load(kfile.read_text()) or {}
        for gen in [*doc.get("configMapGenerator", []), *doc.get("secretGenerator", [])]:
            for entry in [*gen.get("files", []), *gen.get("envs", [])]:
                src = entry.split("=", 1)[-1]
                if not (kfile.parent / src).exists():
                    rel = (kfile.parent / src).resolve()
                    try:
                        shown = str(rel.relative_to(root.resolve()))
                    except ValueError:
                        shown = str(rel)
                    missing.append(
                        f"{kfile.relative_to(root)}: {gen['name']} needs {shown}, which does not "
                        "exist"
                    )
    return missing


def build(overlay_dir: Path) -> list[Obj]:
    """`kustomize build` of one directory (load restrictor off: see deploy/k8s/base)."""
    result = subprocess.run(
        [str(kustomize()), "build", "--load-restrictor=LoadRestrictionsNone", str(overlay_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise BuildError(f"kustomize build {overlay_dir} failed:\n{result.stderr.strip()}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def build_overlays(root: Path, overlays: tuple[str, ...]) -> dict[str, Rendered]:
    return {
        name: Rendered(name, build(root / "deploy" / "k8s" / "overlays" / name))
        for name in overlays
    }
