"""Where things are, and the pinned versions the checks use."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

KUSTOMIZE_VERSION = "v5.8.2"
"""Newest kustomize whose module builds with Go 1.26 (v5.8.3 needs Go 1.27)."""
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUBERNETES_VERSION = "1.33.0"
"""The Kubernetes version core objects are validated against (kubernetes-validate schemas)."""

OVERLAYS = ("dev", "prod")
AUTOSCALED = ("ingest", "classifier", "dispatcher", "notifier")
"""The pipeline's services that the autoscalers own in prod (no fixed `replicas`)."""
SERVICES = (*AUTOSCALED, "console")
"""Every deployed service: one Dockerfile target, one Deployment and one Service each. The
console is not autoscaled (each replica reads the whole live feed): prod pins its replicas."""
DEV_SERVICES = ("sandbox",)
"""Deployed in dev clusters only, never in prod: the provider sandbox (services/sandbox, its own
Dockerfile target, deploy/k8s/components/provider-sandbox). It plays the providers the notifier
calls, so its settings are plain pydantic-settings, not HotlineSettings."""


def cache_dir() -> Path:
    """The Hotline cache outside the clone (the same one deploy/local/stack.py uses)."""
    env = os.environ.get("HOTLINE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "hotline"


def shared_dir(repo: Path = REPO) -> Path:
    """`shared/` beside the clone, locally and in CI (HOTLINE_SHARED_DIR overrides)."""
    from hotline.testing.paths import shared_dir as locate

    return locate(repo)


def crd_dir(repo: Path = REPO) -> Path:
    return shared_dir(repo) / "k8s-crds"
