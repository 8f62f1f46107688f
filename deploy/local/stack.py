#!/usr/bin/env python3
"""The local stack: Apache Kafka (KRaft, single node) and FerretDB (SQLite), on 127.0.0.1.

    python deploy/local/stack.py up|down|status|reset|fetch
    python deploy/local/stack.py start|stop kafka|ferretdb|prometheus
    python deploy/local/stack.py with-stack -- CMD ...
        (start what is not running, run CMD, stop what this call started)

Nothing here needs root or Docker. Downloads come only from the package registries this
machine reaches and are cached outside the clone (HOTLINE_CACHE_DIR, default ~/.cache/hotline):

* Kafka's jars are resolved from Maven Central with Maven (deploy/local/kafka-pom.xml).
  Pinned to Apache Kafka 4.1.1: the 4.x line is KRaft-only (no ZooKeeper to run), 4.1 is the
  newest minor line whose broker runs on this machine's Java 17 with a patch release out, and
  aiokafka 0.14 / faust-streaming 0.15 (our clients) are tested against 4.x brokers.
* FerretDB v1.24.2 comes from the Go module proxy. A plain `go install ...@v1.24.2` builds a
  binary that panics at start-up (the module zip lacks build/version/version.txt), so the script
  copies that exact module version from the Go module cache, writes the version file, and
  builds its own `cmd/ferretdb` with `go build`.
* One line of FerretDB is patched before the build (FERRETDB_PATCHES): its SQLite backend
  looks documents up by `_ferretdb_sjson->'$._id'` while the unique `_id` index it creates is
  on `_ferretdb_sjson->"_id"`, so SQLite never uses the index: every find, update or delete by
  `_id` read the whole table (measured: an update by `_id` cost 28 ms of CPU at 1,000
  documents, 400 ms at 20,000). The patched expression `->'_id'` is the same JSON path (SQLite
  reads a label without `$` as `$.label`) and matches the index (EXPLAIN QUERY PLAN: SEARCH
  USING INDEX instead of SCAN). The binary's name carries the patch level, so a cached
  unpatched build is not reused.
* FerretDB's SQLite files run in WAL mode with `synchronous=NORMAL` (FerretDB leaves SQLite's
  FULL, an fsync per commit). Decision: a commit survives any process crash (kill -9 of
  FerretDB or of a service, which the fault tests do) but not a power cut of this machine,
  the same promise the local single-node Kafka makes (it leaves flushing to the OS page cache).
  With FULL, concurrent writers queue behind each other's fsync and SQLite's busy handler:
  measured with 16 concurrent writers, 250 inserts/s at 2.4 ms of FerretDB CPU each, against
  2,200-3,000/s at 0.25 ms with NORMAL. HOTLINE_FERRETDB_SYNCHRONOUS=full restores the fsync;
  production runs MongoDB with its journal, where this does not apply.
* FerretDB runs with Go's GOGC=400 (HOTLINE_FERRETDB_GOGC; Go's default is 100): its heap is
  small (~50 MiB) and short-lived garbage from decoding documents kept the collector at ~10 %
  of its CPU. Measured with 8 concurrent single-document inserts against fresh instances side
  by side: ~0.51 ms of FerretDB CPU per insert at 100, ~0.44 ms at 400 (800 and 1,600 gave no
  more). In the pipeline (`hotline bench --rates 100 --step-seconds 30 --no-scaling
  --no-profile`, runs before and after): FerretDB 152-172 messages per CPU-second before,
  184-189 after, its share of the pipeline's CPU 32-34 % before, 28-29 % after, for ~30 MiB
  more peak memory; the pipeline's total and p99 stayed within the run-to-run noise.
* Prometheus is optional: started when Debian's `prometheus` binary is installed.

State (data, logs, PID files) lives in one git-ignored folder, HOTLINE_STATE_DIR (default
<repo>/.local). Ports: HOTLINE_KAFKA_PORT (9092), HOTLINE_KAFKA_CONTROLLER_PORT (9093),
HOTLINE_MONGO_PORT (27017), HOTLINE_FERRETDB_DEBUG_PORT (27088), HOTLINE_PROMETHEUS_PORT (9090).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KAFKA_VERSION = "4.1.1"
FERRETDB_VERSION = "v1.24.2"
# (file in the module, text, replacement): see the module docstring.
FERRETDB_PATCHES = [
    (
        "internal/backends/sqlite/metadata/metadata.go",
        """IDColumn = DefaultColumn + "->'$._id'\"""",
        """IDColumn = DefaultColumn + "->'_id'\"""",
    ),
]
FERRETDB_BUILD = f"{FERRETDB_VERSION}-hotline{len(FERRETDB_PATCHES)}"
KAFKA_HEAP = os.environ.get("HOTLINE_KAFKA_HEAP", "768m")
SQLITE_SYNCHRONOUS = os.environ.get("HOTLINE_FERRETDB_SYNCHRONOUS", "normal").lower()
FERRETDB_GOGC = os.environ.get("HOTLINE_FERRETDB_GOGC", "400")
READY_TIMEOUT_S = float(os.environ.get("HOTLINE_STACK_READY_TIMEOUT", "90"))
NOTE_EVERY_S = 5.0  # a line while a readiness wait goes on (a silent minute looks like a hang)


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        fail(f"{name}={raw!r} is not a port number")


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"stack: {message}", file=sys.stderr)
    raise SystemExit(code)


@dataclass(frozen=True)
class Paths:
    state: Path
    cache: Path

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def kafka_data(self) -> Path:
        return self.state / "kafka"

    @property
    def ferretdb_data(self) -> Path:
        return self.state / "ferretdb"

    @property
    def prometheus_data(self) -> Path:
        return self.state / "prometheus"

    @property
    def kafka_libs(self) -> Path:
        return self.cache / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def ferretdb_bin(self) -> Path:
        return self.cache / "bin" / f"ferretdb-{FERRETDB_BUILD}"


def paths() -> Paths:
    state = Path(os.environ.get("HOTLINE_STATE_DIR", REPO / ".local")).resolve()
    cache = Path(os.environ.get("HOTLINE_CACHE_DIR", Path.home() / ".cache" / "hotline")).resolve()
    return Paths(state=state, cache=cache)


def ports() -> dict[str, int]:
    return {
        "kafka": _env_port("HOTLINE_KAFKA_PORT", 9092),
        "kafka_controller": _env_port("HOTLINE_KAFKA_CONTROLLER_PORT", 9093),
        "mongo": _env_port("HOTLINE_MONGO_PORT", 27017),
        "ferretdb_debug": _env_port("HOTLINE_FERRETDB_DEBUG_PORT", 27088),
        "prometheus": _env_port("HOTLINE_PROMETHEUS_PORT", 9090),
    }


PORT_ENV = {
    "kafka": "HOTLINE_KAFKA_PORT",
    "kafka_controller": "HOTLINE_KAFKA_CONTROLLER_PORT",
    "mongo": "HOTLINE_MONGO_PORT",
    "ferretdb_debug": "HOTLINE_FERRETDB_DEBUG_PORT",
    "prometheus": "HOTLINE_PROMETHEUS_PORT",
}

TOOL_HINTS = {
    "java": "install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)",
    "mvn": "install Maven (Debian: apt-get install maven)",
    "go": "install Go 1.24+ (https://go.dev/doc/install; Debian 13: apt-get install golang)",
}


def progress(message: str) -> None:
    print(f"stack: {message}", flush=True)


HEARTBEAT_S = 15.0


def run_quietly(
    cmd: list[str], doing: str, heartbeat_s: float = HEARTBEAT_S, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a slow tool (Maven, Go) with its output captured, saying every `heartbeat_s` that
    it is still `doing` something and for how long, so a first run is never silent for
    minutes. The output is returned for the error message when the tool fails."""
    started = time.monotonic()
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    ) as proc:
        while True:
            try:
                out, err = proc.communicate(timeout=heartbeat_s)
                break
            except subprocess.TimeoutExpired:
                progress(f"still {doing} ({time.monotonic() - started:.0f} s)")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


# --------------------------------------------------------------------------- processes


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie left by a parent that has not reaped it is not alive
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot, /proc/<pid>/stat field 22), or None
    where there is no /proc. Unchanged by exec, so it is known as soon as `spawn` returns."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def read_pid(p: Paths, name: str) -> int | None:
    """The component's PID, if it is running.

    The PID file holds the PID and the process's start time: a PID reused by another process
    (after a reboot or a crash) has another start time, so it is not taken for the component,
    and `down` never signals it. A file with a PID alone (older scripts) is trusted as before.
    """
    pidfile = p.run / f"{name}.pid"
    try:
        fields = pidfile.read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if not pid_alive(pid):
        return None
    started = start_time(pid)
    if len(fields) > 1 and started is not None and fields[1] != started:
        return None
    return pid


def spawn(p: Paths, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    p.logs.mkdir(parents=True, exist_ok=True)
    p.run.mkdir(parents=True, exist_ok=True)
    log = open(p.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=p.state,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # survives the shell that started it; stopped by PID file
    )
    started = start_time(proc.pid)
    (p.run / f"{name}.pid").write_text(f"{proc.pid} {started}" if started else str(proc.pid))
    return proc.pid


def stop_pid(p: Paths, name: str, timeout_s: float = 30.0) -> bool:
    pid = read_pid(p, name)
    pidfile = p.run / f"{name}.pid"
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(
    p: Paths, name: str, check: Callable[[], bool], timeout_s: float = READY_TIMEOUT_S
) -> None:
    began = time.monotonic()
    deadline = began + timeout_s
    last_note = began
    while time.monotonic() < deadline:
        if check():
            return
        if read_pid(p, name) is None:
            break
        now = time.monotonic()
        if now - last_note >= NOTE_EVERY_S:
            progress(f"still waiting for {name} ({now - began:.0f}s)")
            last_note = now
        time.sleep(0.3)
    log = p.logs / f"{name}.log"
    print(f"--- last lines of {log} ---\n{tail(log)}\n---", file=sys.stderr)
    stop_pid(p, name, timeout_s=5)
    fail(f"{name} did not become ready within {timeout_s:.0f}s (log: {log})")


def require_free(component: str, port: int) -> None:
    require_free_port(component, port, PORT_ENV[component])


def require_free_port(name: str, port: int, env_var: str) -> None:
    """One line naming the busy port and the variable that moves it, then exit."""
    if port_open(port):
        fail(f"port {port} is already in use by another program; set {env_var} to move {name}")


def require_tool(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        fail(f"'{tool}' not found: {TOOL_HINTS[tool]}")
    return found


# --------------------------------------------------------------------------- Kafka


def fetch_kafka(p: Paths) -> None:
    marker = p.kafka_libs / ".complete"
    if marker.exists():
        return
    require_tool("java")
    mvn = require_tool("mvn")
    progress(f"resolving Apache Kafka {KAFKA_VERSION} jars from Maven Central (first run only)")
    p.kafka_libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-B",
        "-ntp",
        "-f",
        str(HERE / "kafka-pom.xml"),
        f"-Dkafka.version={KAFKA_VERSION}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={p.kafka_libs}",
        "-DincludeScope=runtime",
    ]
    result = run_quietly(cmd, "resolving Kafka's jars with Maven")
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], file=sys.stderr)
        fail("Maven could not resolve Kafka's jars (is Maven Central reachable?)")
    marker.write_text(KAFKA_VERSION)
    progress(f"Kafka jars cached in {p.kafka_libs}")


def kafka_properties(p: Paths) -> Path:
    pt = ports()
    props = f"""# written by deploy/local/stack.py
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{pt["kafka_controller"]}
listeners=PLAINTEXT://127.0.0.1:{pt["kafka"]},CONTROLLER://127.0.0.1:{pt["kafka_controller"]}
advertised.listeners=PLAINTEXT://127.0.0.1:{pt["kafka"]}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={p.kafka_data}
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=104857600
num.network.threads=2
num.io.threads=4
"""
    conf = p.state / "kafka.properties"
    p.state.mkdir(parents=True, exist_ok=True)
    conf.write_text(props)
    return conf


def kafka_java(p: Paths) -> list[str]:
    java = require_tool("java")
    return [
        java,
        f"-Xms{KAFKA_HEAP}",
        f"-Xmx{KAFKA_HEAP}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
        "-cp",
        f"{p.kafka_libs}/*",
    ]


def format_kafka(p: Paths, conf: Path) -> None:
    if (p.kafka_data / "meta.properties").exists():
        return
    progress("formatting Kafka storage (first start only)")
    p.kafka_data.mkdir(parents=True, exist_ok=True)
    cluster_id = uuid.uuid4().hex[:22]
    cmd = [*kafka_java(p), "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(conf)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], file=sys.stderr)
        fail("formatting Kafka storage failed")


def kafka_ready() -> bool:
    """Readiness = a Kafka metadata request succeeds (not just an open port)."""
    port = ports()["kafka"]
    if not port_open(port):
        return False
    try:
        return _metadata_request("127.0.0.1", port)
    except OSError:
        return False


def _metadata_request(host: str, port: int) -> bool:
    """A raw MetadataRequest v4 (all topics); True when a broker answers with a broker list."""
    import struct

    client = b"hotline-stack"
    body = struct.pack(">i", -1) + struct.pack(">?", False)  # topics=null, allow_auto=false
    header = struct.pack(">hhih", 3, 4, 1, len(client)) + client
    payload = header + body
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        size_raw = _recv_exact(sock, 4)
        (size,) = struct.unpack(">i", size_raw)
        data = _recv_exact(sock, size)
    correlation, _throttle_ms, brokers = struct.unpack(">iii", data[:12])
    return bool(correlation == 1 and brokers >= 1)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return chunks


def start_kafka(p: Paths) -> bool:
    if read_pid(p, "kafka") is not None:
        return False
    pt = ports()
    require_free("kafka", pt["kafka"])
    require_free("kafka_controller", pt["kafka_controller"])
    fetch_kafka(p)
    conf = kafka_properties(p)
    format_kafka(p, conf)
    progress(f"starting Kafka {KAFKA_VERSION} on 127.0.0.1:{pt['kafka']}")
    spawn(p, "kafka", [*kafka_java(p), "kafka.Kafka", str(conf)])
    wait_ready(p, "kafka", kafka_ready)
    return True


# --------------------------------------------------------------------------- FerretDB


def fetch_ferretdb(p: Paths) -> None:
    if p.ferretdb_bin.exists():
        return
    go = require_tool("go")
    progress(f"building FerretDB {FERRETDB_VERSION} with Go (first run only, about a minute)")
    download = run_quietly(
        [go, "mod", "download", "-json", f"github.com/FerretDB/FerretDB@{FERRETDB_VERSION}"],
        "downloading FerretDB's Go modules",
    )
    if download.returncode != 0:
        print(download.stdout[-2000:], download.stderr[-2000:], file=sys.stderr)
        fail("could not download FerretDB from the Go module proxy")
    module_dir = Path(json.loads(download.stdout)["Dir"])
    src = p.cache / "src" / f"ferretdb-{FERRETDB_VERSION}"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(module_dir, src)
    for path in [src, *src.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    (src / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
    for relative, text, replacement in FERRETDB_PATCHES:
        path = src / relative
        code = path.read_text(encoding="utf-8")
        if code.count(text) != 1:
            fail(f"cannot patch FerretDB {FERRETDB_VERSION}: {text!r} not found once in {relative}")
        path.write_text(code.replace(text, replacement), encoding="utf-8")
    (src / "build" / "version" / "package.txt").write_text("hotline-local\n")
    p.ferretdb_bin.parent.mkdir(parents=True, exist_ok=True)
    build = run_quietly(
        [go, "build", "-trimpath", "-o", str(p.ferretdb_bin), "./cmd/ferretdb"],
        "building FerretDB with Go",
        cwd=src,
        env={**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"},
    )
    if build.returncode != 0:
        print(build.stdout[-3000:], build.stderr[-3000:], file=sys.stderr)
        fail("building FerretDB failed")
    progress(f"FerretDB built: {p.ferretdb_bin}")


def mongo_ready() -> bool:
    """Readiness = the server answers a `ping` over the MongoDB wire protocol."""
    port = ports()["mongo"]
    if not port_open(port):
        return False
    try:
        return _mongo_ping("127.0.0.1", port)
    except OSError:
        return False


def _mongo_ping(host: str, port: int) -> bool:
    import struct

    # OP_MSG with one section-0 BSON document {ping: 1, $db: "admin"}.
    def bson(doc: list[tuple[str, object]]) -> bytes:
        out = b""
        for key, value in doc:
            if isinstance(value, int):
                out += b"\x10" + key.encode() + b"\x00" + struct.pack("<i", value)
            else:
                raw = str(value).encode() + b"\x00"
                out += b"\x02" + key.encode() + b"\x00" + struct.pack("<i", len(raw)) + raw
        return struct.pack("<i", len(out) + 5) + out + b"\x00"

    body = struct.pack("<I", 0) + b"\x00" + bson([("ping", 1), ("$db", "admin")])
    header = struct.pack("<iiii", 16 + len(body), 7, 0, 2013)
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(header + body)
        (length,) = struct.unpack("<i", _recv_exact(sock, 4))
        data = _recv_exact(sock, length - 4)
    return b"ok" in data


def outdated_ferretdb(p: Paths, pid: int) -> str | None:
    """The running FerretDB's binary when it is not this script's current build (one started
    before a FERRETDB_PATCHES change keeps running it until the stack is restarted)."""
    try:
        running = Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None
    return None if running == p.ferretdb_bin else running.name


def start_ferretdb(p: Paths) -> bool:
    pid = read_pid(p, "ferretdb")
    if pid is not None:
        old = outdated_ferretdb(p, pid)
        if old is not None:
            progress(
                f"FerretDB (pid {pid}) runs an older build, {old}: restart the stack "
                f"(make stack-down && make stack-up) to run {p.ferretdb_bin.name}"
            )
        return False
    pt = ports()
    require_free("mongo", pt["mongo"])
    require_free("ferretdb_debug", pt["ferretdb_debug"])
    if SQLITE_SYNCHRONOUS not in ("off", "normal", "full", "extra"):
        fail(f"HOTLINE_FERRETDB_SYNCHRONOUS={SQLITE_SYNCHRONOUS!r}: use normal, full, extra or off")
    fetch_ferretdb(p)
    p.ferretdb_data.mkdir(parents=True, exist_ok=True)
    progress(f"starting FerretDB {FERRETDB_VERSION} (SQLite) on 127.0.0.1:{pt['mongo']}")
    spawn(
        p,
        "ferretdb",
        [
            str(p.ferretdb_bin),
            "--handler=sqlite",
            f"--sqlite-url=file:{p.ferretdb_data}/?_pragma=synchronous({SQLITE_SYNCHRONOUS})",
            f"--state-dir={p.ferretdb_data}",
            f"--listen-addr=127.0.0.1:{pt['mongo']}",
            f"--debug-addr=127.0.0.1:{pt['ferretdb_debug']}",
            "--telemetry=disable",
            "--log-level=warn",
        ],
        env={"GOGC": FERRETDB_GOGC},
    )
    wait_ready(p, "ferretdb", mongo_ready)
    return True


# --------------------------------------------------------------------------- Prometheus


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )


SCRAPE_PORT_ENV = {
    "ingest": "INGEST_PORT",
    "classifier": "CLASSIFIER_PORT",
    "dispatcher": "DISPATCHER_PORT",
    "notifier": "NOTIFIER_PORT",
    "console": "CONSOLE_PORT",
}
"""The variables that move each service (deploy/local/run.py): the scrape follows them."""


def prometheus_config(template: str, rules_dir: Path) -> str:
    """deploy/prometheus/prometheus-local.yml with each job's target on the port its service
    really listens on (`INGEST_PORT`, ... when set) and the rule files as absolute paths (the
    written copy lives in the state directory)."""
    lines = []
    job = ""
    for line in template.splitlines():
        stripped = line.strip()
        if stripped.startswith("- job_name:"):
            job = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("- targets:") and os.environ.get(SCRAPE_PORT_ENV.get(job, "")):
            port = int(os.environ[SCRAPE_PORT_ENV[job]])
            indent = line[: len(line) - len(line.lstrip())]
            line = f'{indent}- targets: ["127.0.0.1:{port}"]'
        elif stripped.startswith("- ") and stripped.endswith(".yml") and not job:
            line = line.replace(stripped[2:], str(rules_dir / stripped[2:]))
        lines.append(line)
    return "\n".join(lines) + "\n"


def prometheus_ready() -> bool:
    return port_open(ports()["prometheus"])


def start_prometheus(p: Paths) -> bool:
    binary = prometheus_binary()
    if binary is None or read_pid(p, "prometheus") is not None:
        return False
    template = REPO / "deploy" / "prometheus" / "prometheus-local.yml"
    if not template.exists():
        return False
    pt = ports()
    if port_open(pt["prometheus"]):
        # Optional, unlike Kafka and FerretDB: a Prometheus already there (Debian's package
        # starts its own service on 9090 when installed) must not stop `make run`.
        progress(
            f"port {pt['prometheus']} is already in use (Debian's prometheus service?): "
            f"not starting the local Prometheus; set {PORT_ENV['prometheus']} to start it "
            "elsewhere"
        )
        return False
    p.prometheus_data.mkdir(parents=True, exist_ok=True)
    config = p.state / "prometheus.yml"
    config.write_text(prometheus_config(template.read_text(encoding="utf-8"), template.parent))
    progress(f"starting Prometheus on 127.0.0.1:{pt['prometheus']}")
    spawn(
        p,
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={p.prometheus_data}",
            f"--web.listen-address=127.0.0.1:{pt['prometheus']}",
            "--storage.tsdb.retention.time=2d",
        ],
    )
    wait_ready(p, "prometheus", prometheus_ready, timeout_s=30)
    return True


# --------------------------------------------------------------------------- commands

COMPONENTS: dict[str, tuple[Callable[[Paths], bool], Callable[[], bool]]] = {
    "kafka": (start_kafka, kafka_ready),
    "ferretdb": (start_ferretdb, mongo_ready),
    "prometheus": (start_prometheus, prometheus_ready),
}


def ensure_default_topics() -> None:
    """Create the topic registry's topics (idempotent), using the project's own code."""
    try:
        import asyncio

        from hotline.kafka import ensure_topics
    except ImportError:  # the venv is not installed yet: the services create them at start-up
        return
    created = asyncio.run(ensure_topics(f"127.0.0.1:{ports()['kafka']}"))
    if created:
        progress(f"created topics: {', '.join(created)}")


def up(components: list[str] | None = None) -> list[str]:
    """Start what is not running; return the components this call started.

    All or nothing: if a start fails or is interrupted (Ctrl-C while Kafka's jars download or
    while FerretDB is not ready yet), whatever this call had started, including a component
    spawned but not ready, is stopped before the error goes on, so no caller is left with
    processes it never heard of.
    """
    p = paths()
    names = components or ["kafka", "ferretdb", "prometheus"]
    running_before = {name for name in names if read_pid(p, name) is not None}
    started = []
    try:
        for name in names:
            start, _ = COMPONENTS[name]
            if start(p):
                started.append(name)
        if components is None or "kafka" in components:
            ensure_default_topics()
    except BaseException:
        spawned = [n for n in names if n not in running_before and read_pid(p, n) is not None]
        if spawned:
            progress(f"start-up did not finish: stopping {', '.join(spawned)}")
            with _no_interrupts():
                down(list(reversed(spawned)))
        raise
    return started


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    """Ignore Ctrl-C/SIGTERM for a block (a clean-up must not be cut short by a second one)."""
    saved: list[tuple[signal.Signals, Any]] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: signals stay as they are
            saved.append((sig, signal.signal(sig, signal.SIG_IGN)))
    try:
        yield
    finally:
        for sig, handler in saved:
            signal.signal(sig, handler)


def down(components: list[str] | None = None) -> list[str]:
    p = paths()
    stopped = []
    for name in components or ["prometheus", "ferretdb", "kafka"]:
        if stop_pid(p, name):
            stopped.append(name)
    return stopped


def status() -> int:
    p = paths()
    pt = ports()
    addresses = {
        "kafka": f"127.0.0.1:{pt['kafka']}",
        "ferretdb": f"mongodb://127.0.0.1:{pt['mongo']}/",
        "prometheus": f"http://127.0.0.1:{pt['prometheus']}/",
    }
    all_ok = True
    for name, (_, ready) in COMPONENTS.items():
        pid = read_pid(p, name)
        if name == "prometheus" and prometheus_binary() is None:
            state = "not installed (optional: apt-get install prometheus)"
        elif pid is None:
            state = "stopped"
            all_ok = all_ok and name == "prometheus"
        elif ready():
            state = f"running (pid {pid})"
            if name == "ferretdb" and (old := outdated_ferretdb(p, pid)) is not None:
                state = f"running an older build, {old} (pid {pid}): restart the stack"
        else:
            state = f"starting or unhealthy (pid {pid})"
            all_ok = False
        print(f"{name:<11} {state:<45} {addresses[name]}")
    print(f"{'state dir':<11} {p.state}")
    return 0 if all_ok else 3


def reset() -> None:
    down()
    p = paths()
    for d in (p.kafka_data, p.ferretdb_data, p.prometheus_data, p.logs):
        shutil.rmtree(d, ignore_errors=True)
    (p.state / "kafka.properties").unlink(missing_ok=True)
    progress(f"wiped {p.state}")


def stack_env() -> dict[str, str]:
    """Connection variables for programs run against this stack (ports may be overridden)."""
    pt = ports()
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{pt['kafka']}",
        "MONGODB_URI": f"mongodb://127.0.0.1:{pt['mongo']}/",
    }


def with_stack(cmd: list[str]) -> int:
    started = up()
    try:
        return subprocess.call(cmd, env={**os.environ, **stack_env()})
    finally:
        if started:
            progress(f"stopping what this run started: {', '.join(started)}")
            down(started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start Kafka, FerretDB (and Prometheus if installed)")
    sub.add_parser("down", help="stop what the scripts started")
    sub.add_parser("status", help="each component's state and address")
    sub.add_parser("reset", help="stop and wipe all data")
    sub.add_parser("fetch", help="download/build Kafka and FerretDB without starting them")
    for verb in ("start", "stop"):
        sp = sub.add_parser(verb, help=f"{verb} one component")
        sp.add_argument("component", choices=sorted(COMPONENTS))
    ws = sub.add_parser("with-stack", help="run a command with the stack up")
    ws.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "up":
        started = up()
        print(
            "stack: up" + (f" (started {', '.join(started)})" if started else " (already running)")
        )
        return status()
    if args.command == "down":
        stopped = down()
        print("stack: stopped " + (", ".join(stopped) if stopped else "nothing (not running)"))
        return 0
    if args.command == "status":
        return status()
    if args.command == "reset":
        reset()
        return 0
    if args.command == "fetch":
        p = paths()
        fetch_kafka(p)
        fetch_ferretdb(p)
        return 0
    if args.command == "start":
        up([args.component])
        return 0
    if args.command == "stop":
        down([args.component])
        return 0
    if args.command == "with-stack":
        cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
        if not cmd:
            fail("with-stack needs a command after --")
        return with_stack(cmd)
    return 2


if __name__ == "__main__":
    sys.exit(main())
