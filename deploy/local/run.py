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
        ("ingest", "hotline_ingest.main", "INGEST_PORT", 8001),
        ("classifier", "hotline_classifier.main", "CLASSIFIER_PORT", 8002),
        ("dispatcher", "hotline_dispatcher.main", "DISPATCHER_PORT", 8003),
        ("notifier", "hotline_notifier.main", "NOTIFIER_PORT", 8004),
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


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="day", help="scenario to play (day, flood, none)")
    args = parser.parse_args(argv)

    started_stack = stack.up()
    p = stack.paths()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    svcs = services()

    def shutdown(*_: object) -> None:
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

    try:
        for svc in svcs:
            stack.require_free_port(svc.name, svc.port, svc.port_env)
            log = open(p.logs / f"{svc.name}.log", "ab")  # noqa: SIM115 - handed to the child
            procs[svc.name] = subprocess.Popen(
                [sys.executable, "-m", svc.module],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, svc.port_env: str(svc.port)},
            )
            print(f"run: started {svc.name} on {svc.url} (log {p.logs / svc.name}.log)", flush=True)
        deadline = time.monotonic() + 90
        pending = {s.name: s for s in svcs}
        while pending and time.monotonic() < deadline:
            for name, svc in list(pending.items()):
                if procs[name].poll() is not None:
                    print(stack.tail(p.logs / f"{name}.log"), file=sys.stderr)
                    raise SystemExit(f"run: {name} exited during start-up (see its log above)")
                if ready(svc.url):
                    print(f"run: {name} ready", flush=True)
                    del pending[name]
            time.sleep(0.3)
        if pending:
            raise SystemExit(f"run: not ready within 90 s: {', '.join(pending)}")
        print("\nHotline is up:")
        print(f"  Kafka     127.0.0.1:{stack.ports()['kafka']}")
        print(f"  MongoDB   mongodb://127.0.0.1:{stack.ports()['mongo']}/ (FerretDB)")
        for svc in svcs:
            print(f"  {svc.name:<9} {svc.url}  (docs {svc.url}/docs, metrics {svc.url}/metrics)")
        if args.scenario != "none":
            print(f"run: scenario '{args.scenario}' needs all four services; not played yet")
        print("\nPress Ctrl-C to stop everything this run started.", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
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


if __name__ == "__main__":
    sys.exit(main())
