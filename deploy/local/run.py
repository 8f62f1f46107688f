#!/usr/bin/env python3
"""`make run`: the local stack, every service as its own process, and a scenario played live.

Starts Kafka and FerretDB (deploy/local/stack.py), then each service that exists, waits for
their /readyz, prints the addresses, and keeps everything up until Ctrl-C, which stops the
services and whatever part of the stack this run started.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import stack  # noqa: E402  (the sibling script)


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port_env: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def services() -> list[Service]:
    defs = [
        ("sandbox", "hotline_sandbox.main", "SANDBOX_PORT", 8009),
        ("ingest", "hotline_ingest.main", "INGEST_PORT", 8001),
        ("classifier", "hotline_classifier.main", "CLASSIFIER_PORT", 8002),
        ("dispatcher", "hotline_dispatcher.main", "DISPATCHER_PORT", 8003),
        ("notifier", "hotline_notifier.main", "NOTIFIER_PORT", 8004),
        ("console", "hotline_console.main", "CONSOLE_PORT", 8005),
    ]
    out = []
    for name, module, env, default in defs:
        if importlib.util.find_spec(module.rsplit(".", 1)[0]) is None:
            continue
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            out.append(Service(name, module, env, int(os.environ.get(env, default))))
    return out


def ready(url: str, path: str = "/readyz") -> bool:
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=1) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


DEMO_DATABASE = "hotline_demo"


def fresh_case_file(database: str) -> None:
    """Empty the demo's database (never any other: a database someone named is theirs)."""
    if database != DEMO_DATABASE:
        return
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(
        stack.stack_env()["MONGODB_URI"], serverSelectionTimeoutMS=5000
    )
    try:
        client.drop_database(database)
    finally:
        client.close()
    print(f"run: a fresh case file for this run (database {database})", flush=True)


def scenario_environment(scenario: str, run_dir: Path) -> dict[str, str]:
    """What the services need to play a scenario as a demo.

    * Escalation timeouts the scenario wants (a compressed day escalates in seconds): the
      dispatcher reads them from its routing file, so the run writes a copy of the default
      routing with the scenario's timeouts and points DISPATCHER_ROUTING_FILE at it.
    * No quiet hours: between 22:00 and 06:00 (Vietnam) the notifier holds P3/P4 alerts until
      morning, so an evening demo would show those reports never reaching an officer.
      `NOTIFIER_QUIET_HOURS_PRIORITIES=[]` (a JSON list) makes no priority wait.
    * A fresh case file: the services keep the demo's cases in their own database
      (`DEMO_DATABASE`, emptied by `main` before the services start). Otherwise a second run
      the same day would merge every scripted report into the open case the first run left
      for the same incident, and show no new case at all. `make run SCENARIO=none` keeps the
      default database (`hotline`), whose data persists.

    A variable already set in the environment is left as it is.
    """
    if scenario == "none":
        return {}
    env: dict[str, str] = {}
    if "MONGODB_DATABASE" not in os.environ:
        env["MONGODB_DATABASE"] = DEMO_DATABASE
    if "NOTIFIER_QUIET_HOURS_PRIORITIES" not in os.environ:
        env["NOTIFIER_QUIET_HOURS_PRIORITIES"] = "[]"
    from hotline_cli.simulate import scenario_timeouts
    from hotline_dispatcher.config import write_routing_variant

    timeouts = scenario_timeouts(scenario)
    if not timeouts or "DISPATCHER_ROUTING_FILE" in os.environ:
        return env
    path = run_dir / f"routing-{Path(scenario).stem}.yaml"
    env["DISPATCHER_ROUTING_FILE"] = str(write_routing_variant(path, timeouts_s=timeouts))
    return env


def wait_for_services(
    svcs: list[Service],
    procs: dict[str, subprocess.Popen[bytes]],
    logs: Path,
    timeout_s: float = 90.0,
    note_every_s: float = 5.0,
) -> None:
    """Until every service answers its readiness probe; a line every `note_every_s` names the
    ones still starting (a first start compiles and loads models: silence looks like a hang).
    """
    start = time.monotonic()
    deadline = start + timeout_s
    last_note = start
    pending = {s.name: s for s in svcs}
    while pending and time.monotonic() < deadline:
        for name, svc in list(pending.items()):
            if procs[name].poll() is not None:
                print(stack.tail(logs / f"{name}.log"), file=sys.stderr)
                raise SystemExit(f"run: {name} exited during start-up (see its log above)")
            if ready(svc.url, "/healthz" if svc.name == "sandbox" else "/readyz"):
                print(f"run: {name} ready", flush=True)
                del pending[name]
        now = time.monotonic()
        if pending and now - last_note >= note_every_s:
            last_note = now
            waited = ", ".join(pending)
            print(f"run: still waiting for {waited} ({now - start:.0f}s)", flush=True)
        time.sleep(0.3)
    if pending:
        raise SystemExit(f"run: not ready within {timeout_s:.0f} s: {', '.join(pending)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="day", help="scenario to play (day, flood, none)")
    args = parser.parse_args(argv)

    # Everything this run starts is recorded as it starts, and stopped in `finally`, whatever
    # ends the run: Ctrl-C or SIGTERM at any moment (also while the stack starts), a service
    # that exits or is not ready in time, a busy port.
    started_stack: list[str] = []
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def shutdown(*_: object) -> None:
        # A second Ctrl-C (or the terminal's SIGTERM) must not leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if procs:
            print("\nrun: stopping services ...", flush=True)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        if started_stack:
            print(f"run: stopping {', '.join(started_stack)}", flush=True)
            stack.down(started_stack)
        print("run: stopped", flush=True)

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        # up() itself stops what it started if it fails or is interrupted part-way.
        started_stack.extend(stack.up())
        p = stack.paths()
        svcs = services()
        env = {
            **os.environ,
            **stack.stack_env(),
            "HOTLINE_ENV": os.environ.get("HOTLINE_ENV", "development"),
            **scenario_environment(args.scenario, p.run),
        }
        if args.scenario != "none":
            fresh_case_file(env.get("MONGODB_DATABASE", ""))
        for svc in svcs:
            stack.require_free_port(svc.name, svc.port, svc.port_env)
            log = open(p.logs / f"{svc.name}.log", "ab")  # noqa: SIM115 - handed to the child
            procs[svc.name] = subprocess.Popen(
                [sys.executable, "-m", svc.module],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**env, svc.port_env: str(svc.port)},
            )
            print(f"run: started {svc.name} on {svc.url} (log {p.logs / svc.name}.log)", flush=True)
        wait_for_services(svcs, procs, p.logs)
        if args.scenario != "none":
            play(args.scenario, svcs)
        print_addresses(svcs)
        print("\nPress Ctrl-C to stop everything this run started.", flush=True)
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"run: {name} exited with {proc.returncode}", file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        shutdown()


def play(scenario: str, svcs: list[Service]) -> None:
    """Play the scenario through the real webhooks, with the live view (hotline simulate)."""
    from hotline_cli.settings import CliSettings
    from hotline_cli.simulate import run as simulate

    urls = {f"HOTLINE_CLI_{s.name.upper()}_URL": s.url for s in svcs}
    os.environ.update({**urls, **stack.stack_env()})
    print(f"\nrun: playing scenario '{scenario}' (hotline simulate --scenario {scenario})\n")
    simulate(CliSettings(), scenario)


def print_addresses(svcs: list[Service]) -> None:
    pt = stack.ports()
    print("\nHotline is up:")
    print(f"  Kafka       127.0.0.1:{pt['kafka']}")
    print(f"  MongoDB     mongodb://127.0.0.1:{pt['mongo']}/ (FerretDB)")
    for svc in svcs:
        extra = {
            "ingest": "webhooks /webhooks/*, OpenAPI /docs",
            "classifier": "faust agent, /metrics",
            "dispatcher": "ops API /api/v1 (token dev-staff-token), OpenAPI /docs",
            "notifier": "acknowledgement links /ack/*, OpenAPI /docs",
            "console": "Staff Office console (sign in with dev-staff-token)",
            "sandbox": "provider sandbox: /sandbox/messages, live /sandbox/stream",
        }.get(svc.name, "")
        print(f"  {svc.name:<11} {svc.url:<24} {extra}; metrics {svc.url}/metrics")
    if stack.prometheus_binary() is not None:
        print(f"  prometheus  http://127.0.0.1:{pt['prometheus']}/")
    print("  CLI         .venv/bin/hotline status | cases | case ID | ack ID")


if __name__ == "__main__":
    sys.exit(main())
