"""Schema validation: core objects with kubernetes-validate, custom resources with the CRDs."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from deploy.check.paths import KUBERNETES_VERSION, crd_dir
from deploy.check.render import Obj

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def describe(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('name')}"


@functools.cache
def load_crds(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the JSON schema of every served version of every CRD in the dir."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served", False):
                    continue
                raw = version["schema"]["openAPIV3Schema"]
                api_version = f"{spec['group']}/{version['name']}"
                schemas[(api_version, spec["names"]["kind"])] = to_json_schema(raw, root=True)
    return schemas


def to_json_schema(node: Any, root: bool = False) -> Any:
    """An OpenAPI v3 structural schema as a JSON Schema, as strict as the API server's
    `--validate=strict` (unknown fields are errors, not silently pruned).

    * `x-kubernetes-int-or-string` → integer or string;
    * `nullable: true` → null is allowed too;
    * an object with `properties` and neither `additionalProperties` nor
      `x-kubernetes-preserve-unknown-fields` rejects unknown fields.
    """
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_json_schema(value) if isinstance(value, dict | list) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(v) for v in value]
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format", "description"):
            continue
        else:
            out[key] = copy.deepcopy(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("nullable"):
        if "type" in out:
            t = out["type"]
            out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if root:
        # The CRD describes metadata as a bare object; check the essentials ourselves.
        out.setdefault("properties", {})["metadata"] = {"type": "object"}
    return out


def validate_custom(obj: Obj, crds: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    schema = crds.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if schema is None:
        served = sorted({f"{v} {k}" for v, k in crds if k == obj.get("kind")})
        hint = f" (the CRDs serve: {', '.join(served)})" if served else ""
        return [f"{describe(obj)}: no CRD serves {obj.get('apiVersion')} {obj.get('kind')}{hint}"]
    problems = [
        f"{describe(obj)}: {'.'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
        for err in sorted(
            jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.absolute_path)
        )
    ]
    problems += _check_metadata(obj)
    return problems


def _check_metadata(obj: Obj) -> list[str]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return [f"{describe(obj)}: metadata.name missing"]
    problems = []
    if not NAME_RE.match(meta["name"]):
        problems.append(f"{describe(obj)}: metadata.name is not a valid DNS subdomain")
    for field in ("labels", "annotations"):
        for k, v in (meta.get(field) or {}).items():
            if not isinstance(v, str):
                problems.append(f"{describe(obj)}: metadata.{field}.{k} must be a string")
    return problems


def validate_core(obj: Obj, version: str = KUBERNETES_VERSION) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path) or "(root)"
        return [f"{describe(obj)}: {path}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [
            f"{describe(obj)}: Kubernetes {version} has no {obj.get('apiVersion')} "
            f"{obj.get('kind')}"
        ]
    return []


def validate_all(objects: list[Obj], crds_path: Path | None = None) -> list[str]:
    """Every object: a CRD's schema when a CRD defines its group, Kubernetes' otherwise."""
    crds = load_crds(crds_path or crd_dir())
    crd_groups = {api.split("/")[0] for api, _ in crds}
    problems: list[str] = []
    for obj in objects:
        group = obj.get("apiVersion", "").split("/")[0] if "/" in obj.get("apiVersion", "") else ""
        if group in crd_groups:
            problems += validate_custom(obj, crds)
        else:
            problems += validate_core(obj)
    return problems
