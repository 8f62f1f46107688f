"""The local stack script fails fast with one line that says what to do."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

STACK = Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack.py"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "HOTLINE_STATE_DIR": str(tmp_path / "state"),
        "HOTLINE_CACHE_DIR": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [sys.executable, str(STACK), *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=60,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_busy_port_names_the_port_and_the_variable(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run(
            tmp_path,
            "start",
            "kafka",
            HOTLINE_KAFKA_PORT=str(port),
            HOTLINE_KAFKA_CONTROLLER_PORT=str(_free_port()),
        )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"stack: port {port} is already in use by another program; "
        "set HOTLINE_KAFKA_PORT to move kafka"
    ]


def test_a_missing_tool_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    # An empty cache and no java/mvn on PATH: the broker cannot be fetched.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    result = _run(
        tmp_path,
        "start",
        "kafka",
        PATH=str(bin_dir),
        HOTLINE_KAFKA_PORT=str(_free_port()),
        HOTLINE_KAFKA_CONTROLLER_PORT=str(_free_port()),
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("stack: 'java' not found: install a JDK 17+")


def test_status_of_a_stack_never_started(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        "status",
        HOTLINE_KAFKA_PORT=str(_free_port()),
        HOTLINE_MONGO_PORT=str(_free_port()),
    )
    assert result.returncode == 3
    assert "kafka       stopped" in result.stdout
    assert "ferretdb    stopped" in result.stdout


def test_a_pid_file_naming_another_process_is_not_the_component(tmp_path: Path) -> None:
    """A PID reused by something else after a crash: the stack is not running, and `down`
    must not signal the stranger (here: a sleeping child of the test)."""
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        run = tmp_path / "state" / "run"
        run.mkdir(parents=True)
        for name in ("kafka", "ferretdb"):
            # The PID our component had, now someone else's: its start time differs.
            (run / f"{name}.pid").write_text(f"{stranger.pid} 1\n")
        ports = {
            "HOTLINE_KAFKA_PORT": str(_free_port()),
            "HOTLINE_MONGO_PORT": str(_free_port()),
        }
        status = _run(tmp_path, "status", **ports)
        assert "kafka       stopped" in status.stdout and "ferretdb    stopped" in status.stdout
        _run(tmp_path, "down", **ports)
        assert stranger.poll() is None  # still alive: not ours to stop
    finally:
        stranger.kill()
        stranger.wait()


def test_a_ferretdb_running_another_build_is_named_with_how_to_restart_it(
    tmp_path: Path,
) -> None:
    """After a change of FERRETDB_PATCHES the running FerretDB is the old binary: `start`
    leaves it running (stopping the database under the services is the operator's call) and
    says how to pick up the new build. A sleeping child stands in for the old binary."""
    old = subprocess.Popen(["sleep", "60"])
    try:
        run = tmp_path / "state" / "run"
        run.mkdir(parents=True)
        started = Path(f"/proc/{old.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (run / "ferretdb.pid").write_text(f"{old.pid} {started}\n")
        result = _run(
            tmp_path,
            "start",
            "ferretdb",
            HOTLINE_MONGO_PORT=str(_free_port()),
            HOTLINE_FERRETDB_DEBUG_PORT=str(_free_port()),
        )
        assert result.returncode == 0, result.stderr
        said = result.stdout + result.stderr
        assert f"FerretDB (pid {old.pid}) runs an older build, sleep" in said, said
        assert "make stack-down && make stack-up" in said
        assert old.poll() is None  # left running
    finally:
        old.kill()
        old.wait()


def _stack_module() -> Any:
    spec = importlib.util.spec_from_file_location("hotline_stack_script", STACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_busy_prometheus_port_skips_the_optional_prometheus(tmp_path: Path) -> None:
    """Debian's package starts its own Prometheus on 9090: the stack goes on without ours
    (Kafka and FerretDB are required, Prometheus is not) and says how to move it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "prometheus"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run(
            tmp_path,
            "start",
            "prometheus",
            PATH=f"{bin_dir}:{os.environ['PATH']}",
            HOTLINE_PROMETHEUS_PORT=str(port),
        )
    assert result.returncode == 0, result.stderr
    assert f"port {port} is already in use" in result.stdout
    assert "set HOTLINE_PROMETHEUS_PORT to start it elsewhere" in result.stdout
    assert not (tmp_path / "state" / "run" / "prometheus.pid").exists()


def test_the_local_scrape_follows_the_services_ports(monkeypatch: Any) -> None:
    stack = _stack_module()
    template = (STACK.parents[1] / "prometheus" / "prometheus-local.yml").read_text()
    monkeypatch.setenv("DISPATCHER_PORT", "18103")
    monkeypatch.delenv("INGEST_PORT", raising=False)
    written = stack.prometheus_config(template, Path("/rules/dir"))
    assert '- targets: ["127.0.0.1:18103"]' in written
    assert '- targets: ["127.0.0.1:8001"]' in written  # ingest keeps its default
    assert "127.0.0.1:8003" not in written
    assert "  - /rules/dir/rules.yml" in written
    jobs = [line.split(":", 1)[1].strip() for line in written.splitlines() if "job_name" in line]
    assert jobs == ["ingest", "classifier", "dispatcher", "notifier", "console"]


def test_a_slow_tool_is_never_silent(capsys: Any) -> None:
    stack = _stack_module()
    result = stack.run_quietly(
        [sys.executable, "-c", "import time; time.sleep(0.8); print('done')"],
        "building something",
        heartbeat_s=0.25,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "done"
    said = capsys.readouterr().out.splitlines()
    assert len(said) >= 2
    assert all(line.startswith("stack: still building something (") for line in said)
