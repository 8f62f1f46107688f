"""`make run` (deploy/local/run.py) and the stack script never leave processes behind when
start-up fails or is interrupted, and say what they are waiting for.

No real stack here: the components are stand-ins (sleeping Python processes whose command line
names the component, spawned with the stack script's own PID files) in a temporary
HOTLINE_STATE_DIR, so the shared stack is never touched.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from hotline_cli.simulate import FLOOD_ESCALATION_TIMEOUTS_S

LOCAL = Path(__file__).resolve().parents[3] / "deploy" / "local"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    monkeypatch.setenv("HOTLINE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOTLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(LOCAL))
    saved = sys.modules.get("stack")
    module = _load("stack", LOCAL / "stack.py")
    monkeypatch.setattr(module, "ensure_default_topics", lambda: None)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield module
    for sig, handler in handlers.items():  # run.main ignores Ctrl-C while it cleans up
        signal.signal(sig, handler)
    p = module.paths()
    for pidfile in p.run.glob("*.pid") if p.run.exists() else []:
        module.stop_pid(p, pidfile.stem, timeout_s=5)
    if saved is not None:
        sys.modules["stack"] = saved


@pytest.fixture
def run(stack: ModuleType) -> ModuleType:
    return _load("hotline_local_run", LOCAL / "run.py")


def stand_in(stack: ModuleType, name: str) -> list[str]:
    """A harmless process standing in for the component `name` (named on its command line)."""
    return [sys.executable, "-c", "import time; time.sleep(60)", name]


def starter(
    stack: ModuleType, name: str, then: BaseException | None = None
) -> Callable[[Any], bool]:
    """A component's start: spawn a stand-in process (PID file and all), then maybe fail."""

    def start(p: Any) -> bool:
        if stack.read_pid(p, name) is not None:
            return False
        stack.spawn(p, name, stand_in(stack, name))
        if then is not None:
            raise then
        return True

    return start


def components(stack: ModuleType, failing: BaseException | None) -> dict[str, Any]:
    """Kafka starts; FerretDB is spawned and then fails with `failing` (if any)."""
    return {
        "kafka": (starter(stack, "kafka"), lambda: True),
        "ferretdb": (starter(stack, "ferretdb", failing), lambda: True),
        "prometheus": (lambda p: False, lambda: True),
    }


def alive(stack: ModuleType, name: str) -> bool:
    return stack.read_pid(stack.paths(), name) is not None


@pytest.mark.parametrize(
    "failure",
    [KeyboardInterrupt(), SystemExit("stack: ferretdb did not become ready")],
    ids=["ctrl-c", "not-ready"],
)
def test_a_stack_start_that_does_not_finish_stops_what_it_started(
    stack: ModuleType, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    monkeypatch.setattr(stack, "COMPONENTS", components(stack, failure))
    with pytest.raises(type(failure)):
        stack.up()
    # Kafka was up and FerretDB spawned (not ready yet): both are stopped again.
    assert not alive(stack, "kafka") and not alive(stack, "ferretdb")
    assert list(stack.paths().run.glob("*.pid")) == []


def test_a_component_that_was_already_running_is_left_running(
    stack: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "COMPONENTS", components(stack, KeyboardInterrupt()))
    stack.spawn(stack.paths(), "kafka", stand_in(stack, "kafka"))  # somebody else's Kafka
    with pytest.raises(KeyboardInterrupt):
        stack.up()
    assert alive(stack, "kafka") and not alive(stack, "ferretdb")


def test_run_stops_the_stack_it_started_when_interrupted_before_the_services(
    stack: ModuleType, run: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "COMPONENTS", components(stack, None))

    def ctrl_c(*_: object) -> dict[str, str]:
        assert alive(stack, "kafka") and alive(stack, "ferretdb")
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "scenario_environment", ctrl_c)
    monkeypatch.setattr(run, "services", list)
    assert run.main(["--scenario", "day"]) == 0
    assert not alive(stack, "kafka") and not alive(stack, "ferretdb")


def test_run_stops_the_stack_when_the_stack_start_is_interrupted(
    stack: ModuleType, run: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "COMPONENTS", components(stack, KeyboardInterrupt()))
    monkeypatch.setattr(run, "services", list)
    assert run.main(["--scenario", "none"]) == 0
    assert list(stack.paths().run.glob("*.pid")) == []


def test_waiting_for_services_names_them_every_few_seconds(
    run: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotline_cli.pipeline import free_port

    svc = run.Service("dispatcher", "nothing", "DISPATCHER_PORT", free_port())
    proc = subprocess.Popen(["sleep", "60"])
    try:
        with pytest.raises(SystemExit, match="not ready within 2 s: dispatcher"):
            run.wait_for_services([svc], {"dispatcher": proc}, Path("."), 2.0, note_every_s=0.5)
    finally:
        proc.kill()
        proc.wait()
    notes = [ln for ln in capsys.readouterr().out.splitlines() if "still waiting" in ln]
    assert len(notes) >= 2, notes
    assert notes[0].startswith("run: still waiting for dispatcher (") and notes[0].endswith("s)")


def test_a_slow_stack_component_is_named_while_it_starts(
    stack: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stack, "NOTE_EVERY_S", 0.4)
    p = stack.paths()
    stack.spawn(p, "kafka", stand_in(stack, "kafka"))
    with pytest.raises(SystemExit):
        stack.wait_ready(p, "kafka", lambda: False, timeout_s=1.5)
    out = capsys.readouterr().out
    assert "stack: still waiting for kafka (" in out, out
    assert not alive(stack, "kafka")  # not ready in time: stopped


def test_the_demo_runs_without_quiet_hours(
    run: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NOTIFIER_QUIET_HOURS_PRIORITIES", raising=False)
    monkeypatch.delenv("DISPATCHER_ROUTING_FILE", raising=False)
    monkeypatch.delenv("MONGODB_DATABASE", raising=False)
    env = run.scenario_environment("day", tmp_path)
    assert env["NOTIFIER_QUIET_HOURS_PRIORITIES"] == "[]"
    assert Path(env["DISPATCHER_ROUTING_FILE"]).exists()
    flood = run.scenario_environment("flood", tmp_path)
    assert flood == {
        "NOTIFIER_QUIET_HOURS_PRIORITIES": "[]",
        "MONGODB_DATABASE": run.DEMO_DATABASE,  # each run empties it: a fresh case file
        "DISPATCHER_ROUTING_FILE": str(tmp_path / "routing-flood.yaml"),
    }
    # The flood escalates within its own minute, not after the production P1 timeout (120 s).
    routing = yaml.safe_load(Path(flood["DISPATCHER_ROUTING_FILE"]).read_text("utf-8"))
    assert routing["timeouts_s"] == FLOOD_ESCALATION_TIMEOUTS_S
    assert run.scenario_environment("none", tmp_path) == {}
    # The value is what the notifier's settings read as "no priority waits".
    from hotline_notifier.settings import NotifierSettings

    monkeypatch.setenv("NOTIFIER_QUIET_HOURS_PRIORITIES", env["NOTIFIER_QUIET_HOURS_PRIORITIES"])
    assert NotifierSettings().quiet_hours_priorities == []
    # A value the operator set is left alone.
    assert "NOTIFIER_QUIET_HOURS_PRIORITIES" not in run.scenario_environment("flood", tmp_path)
