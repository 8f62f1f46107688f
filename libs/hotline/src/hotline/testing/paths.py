"""Where the steering material (`shared/`: TRIAGE.md, samples, CRDs) lives.

It sits beside the clone (`../shared`) in development and in CI. `HOTLINE_SHARED_DIR`
overrides; a clone made somewhere else on this machine finds the workspace's copy.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[5]
WORKSPACE_SHARED = Path("/work/shared")


def shared_dir(repo: Path = REPO_ROOT) -> Path:
    env = os.environ.get("HOTLINE_SHARED_DIR")
    if env:
        return Path(env)
    beside = repo.parent / "shared"
    if beside.is_dir() or not WORKSPACE_SHARED.is_dir():
        return beside
    return WORKSPACE_SHARED
