"""The two external tools: kustomize (built once with `go install`) and promtool (Debian)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from deploy.check.paths import KUSTOMIZE_MODULE, KUSTOMIZE_VERSION, cache_dir


class ToolError(RuntimeError):
    """A tool is missing and could not be installed; the message says what to do."""


def progress(message: str) -> None:
    print(f"deploy-check: {message}", file=sys.stderr, flush=True)


def kustomize() -> Path:
    """The pinned kustomize binary, built into the cache on first use (about 20 s)."""
    target = cache_dir() / "bin" / f"kustomize-{KUSTOMIZE_VERSION}"
    if target.exists():
        return target
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise ToolError(
            f"kustomize {KUSTOMIZE_VERSION} is built with Go: install Go 1.24+ "
            "(Debian: apt-get install golang, or the toolchain from your package manager)"
        )
    progress(f"building kustomize {KUSTOMIZE_VERSION} with go install (first run only) ...")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as gobin:
        env = {**os.environ, "GOBIN": gobin, "GOFLAGS": "-buildvcs=false"}
        result = subprocess.run(
            [go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        built = Path(gobin) / "kustomize"
        if result.returncode != 0 or not built.exists():
            raise ToolError(
                f"go install {KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION} "
                f"failed:\n{result.stderr[-2000:]}"
            )
        os.replace(built, target)  # atomic: a concurrent run sees all or nothing
    progress(f"kustomize cached at {target}")
    return target


def promtool() -> Path:
    """promtool from Debian's `prometheus` package, installed when missing and we are root."""
    found = shutil.which("promtool")
    if found:
        return Path(found)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ToolError("promtool not found: install Debian's package (apt-get install prometheus)")
    progress("installing promtool (apt-get install prometheus, first run only) ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise ToolError(f"apt-get install prometheus failed:\n{result.stderr[-2000:]}")
    stop_packaged_prometheus()
    found = shutil.which("promtool")
    if not found:
        raise ToolError("apt-get installed prometheus but promtool is still not on PATH")
    return Path(found)


def stop_packaged_prometheus() -> None:
    """Debian may start its own Prometheus service on :9090; the local stack needs that port.

    Disable the unit where systemd exists, then end any prometheus process running Debian's
    default configuration (never one started with our config file).
    """
    if shutil.which("systemctl"):
        subprocess.run(
            ["systemctl", "disable", "--now", "prometheus"], capture_output=True, timeout=60
        )
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"prometheus"):
            continue
        configs = [a for a in argv if a.startswith((b"--config.file", b"-config.file"))]
        if configs and not any(b"/etc/prometheus/prometheus.yml" in a for a in configs):
            continue  # someone's own Prometheus (deploy/local/stack.py's): not ours to stop
        progress(f"stopping the Prometheus that Debian's package started (pid {proc.name})")
        with contextlib.suppress(OSError):
            os.kill(int(proc.name), 15)
