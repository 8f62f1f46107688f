"""The manifests checked against the code they deploy and against each other.

Each function takes the rendered overlays (and what it needs from the code) and returns a list
of problems, one line each, naming the overlay and the object.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from deploy.check.catalog import EnvVar, ServiceSettings, architecture_ports
from deploy.check.render import Obj, Rendered

POD_OWNERS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
LOCALHOST = re.compile(r"(//|^)(127\.0\.0\.1|localhost)(:|/|$)")
THIRD_PARTY_ENV: dict[str, set[str]] = {}
"""Env vars a service's libraries read themselves (none today: faust's data directory is
CLASSIFIER_DATA_DIR, passed to faust by the classifier)."""


# --------------------------------------------------------------------------- helpers


def pod_spec(obj: Obj) -> dict[str, Any] | None:
    if obj.get("kind") in POD_OWNERS:
        return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def workloads(r: Rendered) -> Iterator[tuple[Obj, dict[str, Any]]]:
    for obj in r.objects:
        spec = pod_spec(obj)
        if spec is not None:
            yield obj, spec


def name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def service_account_problem(
    r: Rendered, where: str, spec: dict[str, Any], account: str
) -> str | None:
    """A pod must run as its own ServiceAccount `account`, rendered beside it."""
    sa = spec.get("serviceAccountName")
    if sa != account or r.get("ServiceAccount", account) is None:
        return f"{where}: should run as its own ServiceAccount {account} (found {sa!r})"
    return None


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and In/NotIn/Exists/DoesNotExist)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def generated(r: Rendered, kind: str, base: str) -> Obj | None:
    """A ConfigMap or Secret by the name given to its generator (the output adds a hash)."""
    exact = r.get(kind, base)
    if exact is not None:
        return exact
    for obj in r.of_kind(kind):
        if re.fullmatch(re.escape(base) + r"-[a-z0-9]{10}", obj["metadata"]["name"]):
            return obj
    return None


def config_data(r: Rendered, kind: str, cm_name: str) -> dict[str, str] | None:
    obj = r.get(kind, cm_name)
    if obj is None:
        return None
    data = dict(obj.get("data") or {})
    for k, v in (obj.get("binaryData") or {}).items():
        data[k] = v
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}
        data.update(obj.get("stringData") or {})
    return data


def container_env(
    r: Rendered, container: dict[str, Any], example_secrets: dict[str, dict[str, str]]
) -> tuple[dict[str, str | None], list[str]]:
    """Every env var a container gets (value when literal or from a ConfigMap/Secret we can
    see), and the references that resolve to nothing."""
    env: dict[str, str | None] = {}
    problems: list[str] = []
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            ref = source["configMapRef"]
            data = config_data(r, "ConfigMap", ref["name"])
            if data is None:
                if not ref.get("optional"):
                    problems.append(f"envFrom ConfigMap {ref['name']} is not in the overlay")
                continue
            env.update({source.get("prefix", "") + k: v for k, v in data.items()})
        if "secretRef" in source:
            ref = source["secretRef"]
            data = config_data(r, "Secret", ref["name"])
            if data is None:
                data = example_secrets.get(ref["name"])
            if data is None:
                problems.append(
                    f"envFrom Secret {ref['name']} is neither generated nor in the example secrets"
                )
                continue
            env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        value = var.get("value")
        ref = (var.get("valueFrom") or {}).get("secretKeyRef") or (var.get("valueFrom") or {}).get(
            "configMapKeyRef"
        )
        if ref is not None:
            kind = "Secret" if "secretKeyRef" in var["valueFrom"] else "ConfigMap"
            data = config_data(r, kind, ref["name"])
            if data is None and kind == "Secret":
                data = example_secrets.get(ref["name"])
            if data is None:
                problems.append(f"env {var['name']}: {kind} {ref['name']} not found")
            elif ref["key"] not in data:
                problems.append(f"env {var['name']}: {kind} {ref['name']} has no key {ref['key']}")
            else:
                value = data[ref["key"]]
        env[var["name"]] = value
    return env, problems


# --------------------------------------------------------------------------- workloads


def check_pod_security(r: Rendered) -> list[str]:
    """Every pod: non-root, read-only root FS, no privilege escalation, capabilities dropped,
    RuntimeDefault seccomp, requests and limits, no service account token unless needed."""
    problems = []
    for obj, spec in workloads(r):
        pod_sc = spec.get("securityContext") or {}
        where = f"[{r.overlay}] {name(obj)}"
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            sc = container.get("securityContext") or {}
            c = f"{where} container {container['name']}"
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                problems.append(f"{c}: runAsNonRoot is not set")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{c}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{c}: allowPrivilegeEscalation must be false")
            if sc.get("privileged"):
                problems.append(f"{c}: privileged")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{c}: capabilities.drop must contain ALL")
            if (sc.get("capabilities") or {}).get("add"):
                problems.append(f"{c}: adds capabilities")
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                problems.append(f"{c}: seccompProfile must be RuntimeDefault (pod or container)")
            res = container.get("resources") or {}
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (res.get(kind) or {}):
                        problems.append(f"{c}: resources.{kind}.{resource} missing")
            image = container.get("image", "")
            if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
                problems.append(f"{c}: image {image!r} has no pinned tag")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(
                f"{where}: automountServiceAccountToken should be false (no API access)"
            )
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{where}: uses the host's namespaces")
        mounts_tmp = any(
            m.get("mountPath") == "/tmp"  # noqa: S108 - the emptyDir the image expects
            for c in spec.get("containers", [])
            for m in c.get("volumeMounts", [])
        )
        if obj["kind"] == "Deployment" and not mounts_tmp:
            problems.append(f"{where}: no /tmp volume (the root filesystem is read-only)")
    return problems


def check_services(
    r: Rendered, services: tuple[str, ...], settings: dict[str, ServiceSettings | None]
) -> list[str]:
    """Per pipeline service: Deployment, ServiceAccount and Service exist and agree; the port is
    the one the settings and docs/architecture.md give; probes hit /healthz and /readyz on it;
    the image is the Dockerfile target's."""
    problems: list[str] = []
    arch = architecture_ports()
    for svc in services:
        where = f"[{r.overlay}] {svc}"
        dep = r.get("Deployment", svc)
        if dep is None:
            problems.append(f"{where}: no Deployment named {svc}")
            continue
        spec = dep["spec"]["template"]["spec"]
        labels = dep["spec"]["template"]["metadata"].get("labels", {})
        if not selector_matches(dep["spec"]["selector"], labels):
            problems.append(f"{where}: the Deployment's selector does not match its pod labels")
        if labels.get("app.kubernetes.io/component") != "pipeline":
            problems.append(
                f"{where}: pods lack app.kubernetes.io/component=pipeline (NetworkPolicies use it)"
            )
        if (problem := service_account_problem(r, where, spec, svc)) is not None:
            problems.append(problem)
        containers = spec.get("containers", [])
        if len(containers) != 1:
            problems.append(f"{where}: expected one container, found {len(containers)}")
            continue
        c = containers[0]
        image = c.get("image", "")
        repo = image.rsplit(":", 1)[0]
        if repo.rsplit("/", 2)[-2:] != ["hotline", svc]:
            problems.append(f"{where}: image {image!r} is not <registry>/hotline/{svc}:<tag>")
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        expected = arch.get(svc, (None, "", ""))[0]
        s = settings.get(svc)
        if s is not None:
            default_port = s.default("port")
            env_port = f"{s.prefix}PORT".upper()
            env_values = {v["name"]: v.get("value") for v in c.get("env", [])}
            configured = int(env_values[env_port]) if env_values.get(env_port) else default_port
            if default_port != expected:
                problems.append(
                    f"{where}: settings default port {default_port} differs from "
                    f"docs/architecture.md ({expected})"
                )
            expected = configured
        if ports.get("http") != expected:
            problems.append(
                f"{where}: container port 'http' is {ports.get('http')}, the service listens on "
                f"{expected}"
            )
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (c.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != path:
                problems.append(f"{where}: {probe} must GET {path} (found {get.get('path')!r})")
            if get.get("port") not in ("http", expected):
                problems.append(
                    f"{where}: {probe} targets port {get.get('port')!r}, not the service port"
                )
        service = r.get("Service", svc)
        if service is None:
            problems.append(f"{where}: no Service named {svc}")
        else:
            if not selector_matches({"matchLabels": service["spec"].get("selector", {})}, labels):
                problems.append(f"{where}: the Service's selector does not match the pods")
            sports = service["spec"].get("ports", [])
            if not any(
                p.get("name") == "http"
                and p.get("port") == expected
                and p.get("targetPort") in ("http", expected)
                for p in sports
            ):
                problems.append(f"{where}: the Service has no port 'http' {expected} -> http")
    return problems


def mongodb_users(root: Path, services: tuple[str, ...]) -> dict[str, bool]:
    """Which services' code connects to MongoDB (imports `hotline.mongo`), for those whose
    sources are in the tree."""
    found = {}
    for svc in services:
        sources = list((root / "services" / svc / "src").rglob("*.py"))
        if sources:
            found[svc] = any(
                re.search(r"^\s*(from|import) hotline\.mongo\b", p.read_text(), re.M)
                for p in sources
            )
    return found


def check_env(
    r: Rendered,
    services: tuple[str, ...],
    settings: dict[str, ServiceSettings | None],
    shared: dict[str, EnvVar],
    example_secrets: dict[str, dict[str, str]],
    uses_mongodb: dict[str, bool] | None = None,
) -> list[str]:
    """Every env var a service gets is one its settings read; required settings are given;
    file paths point into a mounted ConfigMap key; the listen host is 0.0.0.0; the database
    credential (MONGODB_URI) goes only to services whose code uses MongoDB."""
    problems: list[str] = []
    for svc in services:
        dep = r.get("Deployment", svc)
        s = settings.get(svc)
        if dep is None:
            continue
        where = f"[{r.overlay}] {svc}"
        spec = dep["spec"]["template"]["spec"]
        c = spec["containers"][0]
        env, ref_problems = container_env(r, c, example_secrets)
        problems += [f"{where}: {p}" for p in ref_problems]
        if (uses_mongodb or {}).get(svc) is False and "MONGODB_URI" in env:
            problems.append(
                f"{where}: gets MONGODB_URI (a database credential) but its code never connects "
                "to MongoDB"
            )
        if s is None:
            # Settings not written yet: only the shared names and the prefix can be checked.
            prefix = f"{svc.upper()}_"
            known = set(shared)
            for key in env:
                if (
                    key not in known
                    and not key.startswith(prefix)
                    and key not in THIRD_PARTY_ENV.get(svc, set())
                ):
                    problems.append(f"{where}: env {key} is neither shared nor {prefix}*")
            continue
        known_env = s.env
        for key, value in env.items():
            if key.upper() not in known_env and key not in THIRD_PARTY_ENV.get(svc, set()):
                problems.append(f"{where}: env {key} is not read by {s.cls_name} (typo or stale?)")
                continue
            var = known_env.get(key.upper())
            if var is not None and var.field.endswith(("_file", "_path", "_dir")) and value:
                problems += [f"{where}: env {key}: {p}" for p in _mounted_file(r, spec, c, value)]
            if r.overlay == "prod" and value and LOCALHOST.search(value):
                problems.append(f"{where}: env {key}={value} points at localhost in production")
        for var in known_env.values():
            if var.required and not any(
                n in env for n in known_env if known_env[n].field == var.field
            ):
                problems.append(f"{where}: required setting {var.field} ({var.name}) is not set")
        host_var = f"{s.prefix}HOST".upper()
        host = env.get(host_var, s.default("host"))
        if host != "0.0.0.0":
            problems.append(
                f"{where}: {host_var} is {host!r}; in a pod the service must listen on 0.0.0.0"
            )
    return problems


def _mounted_file(
    r: Rendered, spec: dict[str, Any], container: dict[str, Any], path: str
) -> list[str]:
    for mount in container.get("volumeMounts", []):
        base = mount["mountPath"].rstrip("/") + "/"
        if not (path + "/").startswith(base):
            continue
        volume = next((v for v in spec.get("volumes", []) if v["name"] == mount["name"]), None)
        if volume is None:
            return [f"volume {mount['name']} is not defined"]
        if "configMap" not in volume:
            return []
        data = config_data(r, "ConfigMap", volume["configMap"]["name"])
        if data is None:
            return [f"ConfigMap {volume['configMap']['name']} is not in the overlay"]
        rest = path[len(base) :]
        if rest and rest not in data:
            return [
                f"{path}: ConfigMap {volume['configMap']['name']} has no key {rest} (has "
                f"{sorted(data)})"
            ]
        return []
    return [f"{path} is not inside any mounted volume"]


def check_references(r: Rendered, example_secrets: dict[str, dict[str, str]]) -> list[str]:
    """ConfigMap and Secret volumes name objects that exist (Secrets: generated here or listed
    among the example secrets that deploy/README.md tells operators to create)."""
    problems = []
    for obj, spec in workloads(r):
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                cm = volume["configMap"]
                data = config_data(r, "ConfigMap", cm["name"])
                if data is None and not cm.get("optional"):
                    problems.append(
                        f"[{r.overlay}] {name(obj)}: volume ConfigMap {cm['name']} not in the "
                        "overlay"
                    )
                for item in cm.get("items", []):
                    if data is not None and item["key"] not in data:
                        problems.append(
                            f"[{r.overlay}] {name(obj)}: ConfigMap {cm['name']} has no key "
                            f"{item['key']}"
                        )
            if "secret" in volume:
                sec = volume["secret"]
                data = config_data(r, "Secret", sec["secretName"]) or example_secrets.get(
                    sec["secretName"]
                )
                if data is None:
                    problems.append(
                        f"[{r.overlay}] {name(obj)}: volume Secret {sec['secretName']} unknown"
                    )
                for item in sec.get("items", []):
                    if data is not None and item["key"] not in data:
                        problems.append(
                            f"[{r.overlay}] {name(obj)}: Secret {sec['secretName']} has no key "
                            f"{item['key']}"
                        )
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            _, refs = container_env(r, container, example_secrets)
            problems += [
                f"[{r.overlay}] {name(obj)} container {container['name']}: {p}" for p in refs
            ]
    return problems


# --------------------------------------------------------------------------- Kafka


def check_topics(r: Rendered) -> list[str]:
    """One KafkaTopic per registry topic, with its partitions, retention and cleanup policy;
    replication as the registry says in prod and never above the broker count."""
    from hotline.contracts.topics import ALL_TOPICS

    problems = []
    kafkas = r.of_kind("Kafka")
    if len(kafkas) != 1:
        return [f"[{r.overlay}] expected one Kafka, found {len(kafkas)}"]
    cluster = kafkas[0]["metadata"]["name"]
    brokers = sum(
        p["spec"]["replicas"]
        for p in r.of_kind("KafkaNodePool")
        if "broker" in p["spec"]["roles"]
        and p["metadata"].get("labels", {}).get("strimzi.io/cluster") == cluster
    )
    if not brokers:
        problems.append(
            f"[{r.overlay}] no KafkaNodePool with the broker role for cluster {cluster}"
        )
    topics = {
        t["spec"].get("topicName") or t["metadata"]["name"]: t for t in r.of_kind("KafkaTopic")
    }
    registry = {spec.name: spec for spec in ALL_TOPICS}
    for extra in sorted(set(topics) - set(registry)):
        problems.append(f"[{r.overlay}] KafkaTopic {extra} is not in the topic registry")
    for topic_name, spec in registry.items():
        where = f"[{r.overlay}] KafkaTopic {topic_name}"
        t = topics.get(topic_name)
        if t is None:
            problems.append(f"{where}: missing (the registry has it)")
            continue
        if t["metadata"].get("labels", {}).get("strimzi.io/cluster") != cluster:
            problems.append(f"{where}: label strimzi.io/cluster is not {cluster}")
        s = t["spec"]
        if s.get("partitions") != spec.partitions:
            problems.append(
                f"{where}: {s.get('partitions')} partitions, the registry says {spec.partitions}"
            )
        cfg = {k: str(v) for k, v in (s.get("config") or {}).items()}
        for key in ("cleanup.policy", "retention.ms"):
            if cfg.get(key) != spec.config()[key]:
                problems.append(
                    f"{where}: {key}={cfg.get(key)}, the registry says {spec.config()[key]}"
                )
        for key, value in spec.extra_config.items():
            if cfg.get(key) != value:
                problems.append(f"{where}: {key}={cfg.get(key)}, the registry says {value}")
        replicas = s.get("replicas", 0)
        if replicas > brokers:
            problems.append(f"{where}: {replicas} replicas but only {brokers} broker(s)")
        if int(cfg.get("min.insync.replicas", "1")) > replicas:
            problems.append(f"{where}: min.insync.replicas above the replication factor")
        if r.overlay == "prod":
            if replicas != spec.replication_factor:
                problems.append(
                    f"{where}: {replicas} replicas, the registry says {spec.replication_factor}"
                )
            if cfg.get("min.insync.replicas") != spec.config()["min.insync.replicas"]:
                problems.append(f"{where}: min.insync.replicas differs from the registry")
    return problems


GROUP_SUFFIX = re.compile(r'group_id=f"\{\w+\.(?:consumer_group|group_id)\}-([a-z0-9-]+)"')


def group_suffixes(root: Path, svc: str) -> set[str]:
    """The consumer groups a service derives from its base group, by suffix, read from its
    code: `group_id=f"{settings.consumer_group}-case-events"` → {"case-events"}."""
    found: set[str] = set()
    for path in (root / "services" / svc / "src").rglob("*.py"):
        found |= set(GROUP_SUFFIX.findall(path.read_text()))
    return found


def check_autoscaling(
    r: Rendered,
    services: tuple[str, ...],
    settings: dict[str, ServiceSettings | None],
    root: Path,
) -> list[str]:
    """KEDA: each consumer's ScaledObject watches the topics the registry says it consumes, with
    its consumer group, and never asks for more replicas than the smallest of those topics has
    partitions. HPA: ingest on CPU."""
    from hotline.contracts.topics import ALL_TOPICS

    problems = []
    kafka = r.of_kind("Kafka")
    bootstrap = f"{kafka[0]['metadata']['name']}-kafka-bootstrap" if kafka else None
    partitions = {t.name: t.partitions for t in ALL_TOPICS}
    for so in r.of_kind("ScaledObject"):
        target = so["spec"]["scaleTargetRef"]["name"]
        where = f"[{r.overlay}] ScaledObject {so['metadata']['name']}"
        if r.get("Deployment", target) is None:
            problems.append(f"{where}: scales Deployment {target}, which is not in the overlay")
        consumed = [t.name for t in ALL_TOPICS if target in t.consumers]
        if not consumed:
            problems.append(f"{where}: {target} consumes no topic in the registry")
            continue
        bound = min(partitions[t] for t in consumed)
        max_replicas = so["spec"].get("maxReplicaCount", 100)
        if max_replicas > bound:
            problems.append(
                f"{where}: maxReplicaCount {max_replicas} > {bound} partitions of "
                f"{', '.join(consumed)}"
                " (extra consumers would sit idle)"
            )
        if so["spec"].get("minReplicaCount", 0) < 1:
            problems.append(
                f"{where}: minReplicaCount must be >= 1 (never scale a consumer to zero)"
            )
        watched = set()
        s = settings.get(target)
        base = None
        if s is not None:
            base = s.default("consumer_group") or s.default("group_id")
        suffixes = group_suffixes(root, target)
        for trig in so["spec"].get("triggers", []):
            if trig.get("type") != "kafka":
                continue
            md = trig.get("metadata", {})
            topic = md.get("topic")
            watched.add(topic)
            if topic not in consumed:
                problems.append(f"{where}: trigger topic {topic} is not consumed by {target}")
            if base is not None and topic:
                short = topic.split(".")[1] if topic.count(".") >= 2 else topic
                group = f"{base}-{short}" if short in suffixes else base
                if md.get("consumerGroup") != group:
                    problems.append(
                        f"{where}: consumerGroup {md.get('consumerGroup')!r} for {topic}, "
                        f"{target}'s code consumes it as group {group!r}"
                    )
            if bootstrap and not str(md.get("bootstrapServers", "")).startswith(bootstrap):
                problems.append(f"{where}: bootstrapServers should be {bootstrap}...")
        missing = set(consumed) - watched
        if missing:
            problems.append(f"{where}: no trigger for {', '.join(sorted(missing))}")
    for hpa in r.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]["name"]
        if r.get("Deployment", target) is None:
            problems.append(f"[{r.overlay}] HPA {hpa['metadata']['name']}: no Deployment {target}")
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            problems.append(
                f"[{r.overlay}] HPA {hpa['metadata']['name']}: minReplicas > maxReplicas"
            )
    scaled = [so["spec"]["scaleTargetRef"]["name"] for so in r.of_kind("ScaledObject")]
    scaled += [h["spec"]["scaleTargetRef"]["name"] for h in r.of_kind("HorizontalPodAutoscaler")]
    for target in set(scaled):
        if scaled.count(target) > 1:
            problems.append(f"[{r.overlay}] {target} has more than one autoscaler")
    if r.overlay == "prod":
        for svc in services:
            if svc not in scaled:
                problems.append(f"[prod] {svc} has no autoscaler")
        hpa_targets = {
            h["spec"]["scaleTargetRef"]["name"]: h for h in r.of_kind("HorizontalPodAutoscaler")
        }
        if "ingest" in hpa_targets and not any(
            m.get("resource", {}).get("name") == "cpu"
            for m in hpa_targets["ingest"]["spec"].get("metrics", [])
        ):
            problems.append("[prod] the ingest HPA does not scale on CPU")
    problems += check_rate_limit_share(r)
    return problems


def most_replicas(r: Rendered, deployment: str) -> int:
    """The most replicas of a Deployment that can run at once: its autoscaler's maximum, or
    its fixed `replicas`."""
    for so in r.of_kind("ScaledObject"):
        if so["spec"]["scaleTargetRef"]["name"] == deployment:
            return int(so["spec"].get("maxReplicaCount", 100))
    for hpa in r.of_kind("HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == deployment:
            return int(hpa["spec"]["maxReplicas"])
    dep = r.get("Deployment", deployment)
    return int(dep["spec"].get("replicas", 1)) if dep is not None else 1


def check_rate_limit_share(r: Rendered) -> list[str]:
    """Each notifier replica enforces 1/NOTIFIER_RATE_LIMIT_REPLICAS of the provider limits: a
    value below the most replicas that can run lets them together exceed the providers'."""
    dep = r.get("Deployment", "notifier")
    if dep is None:
        return []
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env, _ = container_env(r, container, {})
    raw = env.get("NOTIFIER_RATE_LIMIT_REPLICAS") or "1"
    if not raw.isdigit() or int(raw) < 1:
        return [f"[{r.overlay}] notifier: NOTIFIER_RATE_LIMIT_REPLICAS={raw!r} is not a count"]
    most = most_replicas(r, "notifier")
    if int(raw) < most:
        return [
            f"[{r.overlay}] notifier: up to {most} replicas but NOTIFIER_RATE_LIMIT_REPLICAS="
            f"{raw}: together they would send {most / int(raw):g}x the provider rate limits"
        ]
    return []


# --------------------------------------------------------------------------- monitoring


def check_monitoring(r: Rendered, root: Path, services: tuple[str, ...]) -> list[str]:
    problems = []
    for svc in services:
        service = r.get("Service", svc)
        if service is None:
            continue
        monitors = [
            sm
            for sm in r.of_kind("ServiceMonitor")
            if selector_matches(sm["spec"]["selector"], service["metadata"].get("labels", {}))
        ]
        if not monitors:
            problems.append(f"[{r.overlay}] no ServiceMonitor selects Service {svc}")
        port_names = {p.get("name") for p in service["spec"]["ports"]}
        for sm in monitors:
            for ep in sm["spec"].get("endpoints", []):
                if ep.get("port") not in port_names:
                    problems.append(
                        f"[{r.overlay}] ServiceMonitor {sm['metadata']['name']}: Service {svc} "
                        f"has no port {ep.get('port')!r}"
                    )
                if ep.get("path", "/metrics") != "/metrics":
                    problems.append(
                        f"[{r.overlay}] ServiceMonitor {sm['metadata']['name']}: path must be "
                        "/metrics"
                    )
                if ep.get("honorLabels") is not True:
                    problems.append(
                        f"[{r.overlay}] ServiceMonitor {sm['metadata']['name']}: honorLabels must "
                        "be true "
                        "(else the services' `service` label becomes exported_service)"
                    )
    rules = yaml.safe_load((root / "deploy" / "prometheus" / "rules.yml").read_text())["groups"]
    prs = r.of_kind("PrometheusRule")
    if len(prs) != 1:
        problems.append(f"[{r.overlay}] expected one PrometheusRule, found {len(prs)}")
    elif prs[0]["spec"]["groups"] != rules:
        problems.append(
            f"[{r.overlay}] PrometheusRule differs from deploy/prometheus/rules.yml (run --write)"
        )
    dashboards = sorted((root / "deploy" / "grafana").glob("*.json"))
    cms = [
        cm
        for cm in r.of_kind("ConfigMap")
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    shipped = {k: v for cm in cms for k, v in (cm.get("data") or {}).items()}
    for path in dashboards:
        if path.name not in shipped:
            problems.append(
                f"[{r.overlay}] dashboard {path.name} is in no ConfigMap labelled "
                "grafana_dashboard=1"
            )
        elif json.loads(shipped[path.name]) != json.loads(path.read_text()):
            problems.append(
                f"[{r.overlay}] dashboard ConfigMap for {path.name} differs from the file"
            )
    for key in sorted(set(shipped) - {p.name for p in dashboards}):
        problems.append(
            f"[{r.overlay}] dashboard ConfigMap key {key} has no file in deploy/grafana"
        )
    return problems


# --------------------------------------------------------------------------- network


def _peer_admits(peer: dict[str, Any], ns: str, labels: dict[str, str], own_ns: str) -> bool:
    if "ipBlock" in peer:
        return False
    ns_sel = peer.get("namespaceSelector")
    pod_sel = peer.get("podSelector")
    if ns_sel is not None:
        if not selector_matches(ns_sel, {"kubernetes.io/metadata.name": ns}) and ns_sel != {}:
            return False
    elif ns != own_ns:
        return False
    return pod_sel is None or pod_sel == {} or selector_matches(pod_sel, labels)


def _port_ok(rule_ports: list[dict[str, Any]] | None, port: int, port_name: str | None) -> bool:
    if not rule_ports:
        return True
    return any(p.get("port") in (port, port_name) or p.get("port") is None for p in rule_ports)


def _ip_admits(peer: dict[str, Any], ip: str) -> bool:
    block = peer.get("ipBlock")
    if not block:
        return False
    addr = ipaddress.ip_address(ip)
    if addr not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(addr in ipaddress.ip_network(e) for e in block.get("except", []))


def flow_allowed(
    r: Rendered,
    src: tuple[str, dict[str, str]] | str,
    dst: tuple[str, dict[str, str]] | str,
    port: int,
    port_name: str | None = None,
) -> bool:
    """Whether the overlay's NetworkPolicies let src reach dst:port. A side is (namespace,
    pod labels), or an IP address outside the cluster. Policies live in the overlay's namespace;
    a side in another namespace is not isolated by them."""
    own_ns = "hotline"
    policies = [*r.of_kind("NetworkPolicy"), *strimzi_policies(r)]
    for obj in policies:
        own_ns = obj["metadata"].get("namespace", own_ns)
        break

    def isolated(side: tuple[str, dict[str, str]], kind: str) -> list[dict[str, Any]]:
        ns, labels = side
        if ns != own_ns:
            return []
        return [
            p
            for p in policies
            if kind in p["spec"].get("policyTypes", ["Ingress"])
            and (
                p["spec"]["podSelector"] == {} or selector_matches(p["spec"]["podSelector"], labels)
            )
        ]

    if not isinstance(src, str):
        egress = isolated(src, "Egress")
        if egress:
            ok = False
            for p in egress:
                for rule in p["spec"].get("egress", []):
                    peers = rule.get("to")
                    if not _port_ok(rule.get("ports"), port, port_name):
                        continue
                    if not peers:
                        ok = True
                    elif isinstance(dst, str):
                        ok = ok or any(_ip_admits(peer, dst) for peer in peers)
                    else:
                        ok = ok or any(_peer_admits(peer, dst[0], dst[1], own_ns) for peer in peers)
            if not ok:
                return False
    if not isinstance(dst, str):
        ingress = isolated(dst, "Ingress")
        if ingress:
            ok = False
            for p in ingress:
                for rule in p["spec"].get("ingress", []):
                    peers = rule.get("from")
                    if not _port_ok(rule.get("ports"), port, port_name):
                        continue
                    if not peers or (
                        not isinstance(src, str)
                        and any(_peer_admits(peer, src[0], src[1], own_ns) for peer in peers)
                    ):
                        ok = True
            if not ok:
                return False
    return True


def strimzi_policies(r: Rendered) -> list[Obj]:
    """The ingress policies Strimzi's operator generates for each listener of a Kafka (they are
    not in our manifests, but they are what admits clients): peers from networkPolicyPeers, or
    everyone when a listener has none."""
    out = []
    for kafka in r.of_kind("Kafka"):
        cluster = kafka["metadata"]["name"]
        for listener in kafka["spec"]["kafka"].get("listeners", []):
            rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": listener["port"]}]}
            if listener.get("networkPolicyPeers"):
                rule["from"] = listener["networkPolicyPeers"]
            out.append(
                {
                    "kind": "NetworkPolicy",
                    "metadata": {
                        "name": f"{cluster}-network-policy-kafka",
                        "namespace": kafka["metadata"].get("namespace", "hotline"),
                    },
                    "spec": {
                        "podSelector": {
                            "matchLabels": {
                                "strimzi.io/cluster": cluster,
                                "strimzi.io/kind": "Kafka",
                            }
                        },
                        "policyTypes": ["Ingress"],
                        "ingress": [rule],
                    },
                }
            )
    return out


def pod_labels(r: Rendered, workload: str) -> dict[str, str]:
    for kind in POD_OWNERS:
        obj = r.get(kind, workload)
        if obj is not None:
            return dict(obj["spec"]["template"]["metadata"].get("labels", {}))
    return {}


KAFKA_POD = {
    "strimzi.io/cluster": "hotline",
    "strimzi.io/kind": "Kafka",
    "strimzi.io/name": "hotline-kafka",
}
PROMETHEUS = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
INGRESS_CONTROLLER = ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
PROVIDER_IP = "149.154.167.220"  # a public address (what api.telegram.org resolves to)


def check_network(r: Rendered) -> list[str]:
    """The flows the pipeline needs are allowed, and a few it must not have are denied."""
    if not r.of_kind("NetworkPolicy"):
        return [f"[{r.overlay}] no NetworkPolicy"]
    if not any(
        p["spec"]["podSelector"] == {}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        for p in r.of_kind("NetworkPolicy")
    ):
        return [
            f"[{r.overlay}] no default-deny NetworkPolicy (podSelector {{}}, Ingress and Egress, "
            "no rules)"
        ]
    ns = "hotline"
    pods = {
        svc: (ns, pod_labels(r, svc))
        for svc in ("ingest", "classifier", "dispatcher", "notifier", "console", "mongodb")
    }
    ports = {
        "ingest": 8001,
        "classifier": 8002,
        "dispatcher": 8003,
        "notifier": 8004,
        "console": 8005,
    }
    kafka = (ns, KAFKA_POD)
    must: list[tuple[str, Any, Any, int, str | None]] = []
    must_not: list[tuple[str, Any, Any, int, str | None]] = []
    for svc, port in ports.items():
        must.append((f"{svc} -> kafka:9092", pods[svc], kafka, 9092, None))
        must.append((f"prometheus -> {svc}:{port}", PROMETHEUS, pods[svc], port, "http"))
        must.append(
            (f"{svc} -> DNS", pods[svc], ("kube-system", {"k8s-app": "kube-dns"}), 53, None)
        )
    if r.get("StatefulSet", "mongodb") is not None:
        for svc in ("ingest", "dispatcher", "notifier"):
            must.append((f"{svc} -> mongodb:27017", pods[svc], pods["mongodb"], 27017, None))
        for svc in ("classifier", "console"):
            must_not.append((f"{svc} -> mongodb:27017", pods[svc], pods["mongodb"], 27017, None))
        must.append(
            (
                "mongodb -> mongodb:27017 (replication)",
                pods["mongodb"],
                pods["mongodb"],
                27017,
                None,
            )
        )
    must.append(
        ("ingress controller -> ingest:8001", INGRESS_CONTROLLER, pods["ingest"], 8001, "http")
    )
    must.append(
        (
            "ingress controller -> notifier:8004 (ack links)",
            INGRESS_CONTROLLER,
            pods["notifier"],
            8004,
            "http",
        )
    )
    must.append(
        (
            "ingress controller -> console:8005 (the Staff Office's pages)",
            INGRESS_CONTROLLER,
            pods["console"],
            8005,
            "http",
        )
    )
    must.append(
        ("console -> dispatcher:8003 (ops API)", pods["console"], pods["dispatcher"], 8003, "http")
    )
    must.append(
        (
            "console -> ingest:8001 (the call-taker form)",
            pods["console"],
            pods["ingest"],
            8001,
            "http",
        )
    )
    must.append(("notifier -> providers:443", pods["notifier"], PROVIDER_IP, 443, None))
    must_not.append(
        (
            "ingress controller -> dispatcher:8003",
            INGRESS_CONTROLLER,
            pods["dispatcher"],
            8003,
            "http",
        )
    )
    must_not.append(("ingest -> internet:443", pods["ingest"], PROVIDER_IP, 443, None))
    must_not.append(("classifier -> internet:443", pods["classifier"], PROVIDER_IP, 443, None))
    must_not.append(("console -> internet:443", pods["console"], PROVIDER_IP, 443, None))
    must_not.append(
        ("notifier -> cluster-private 10.0.0.1:443", pods["notifier"], "10.0.0.1", 443, None)
    )
    if r.get("Deployment", "sandbox") is not None:
        sandbox_flows(r, pods, kafka, must, must_not)
    problems = []
    for label, src, dst, port, pname in must:
        if not flow_allowed(r, src, dst, port, pname):
            problems.append(f"[{r.overlay}] NetworkPolicies block a needed flow: {label}")
    for label, src, dst, port, pname in must_not:
        if flow_allowed(r, src, dst, port, pname):
            problems.append(f"[{r.overlay}] NetworkPolicies allow a flow they should deny: {label}")
    return problems


Flow = tuple[str, Any, Any, int, str | None]


def sandbox_flows(
    r: Rendered,
    pods: dict[str, tuple[str, dict[str, str]]],
    kafka: tuple[str, dict[str, str]],
    must: list[Flow],
    must_not: list[Flow],
) -> None:
    """Where the provider sandbox is deployed (dev): the notifier reaches its HTTP and SMTP
    ports; nothing else reaches it (it exports no metrics, so not even Prometheus), and it
    reaches nothing (no Kafka, no MongoDB, no internet)."""
    sandbox = ("hotline", pod_labels(r, "sandbox"))
    dep = r.get("Deployment", "sandbox")
    assert dep is not None
    cports = {
        p.get("name"): p.get("containerPort")
        for c in dep["spec"]["template"]["spec"].get("containers", [])
        for p in c.get("ports", [])
    }
    http, smtp = cports.get("http") or 8009, cports.get("smtp") or 8025
    must.append(
        (f"notifier -> sandbox:{http} (provider APIs)", pods["notifier"], sandbox, http, "http")
    )
    must.append((f"notifier -> sandbox:{smtp} (e-mail)", pods["notifier"], sandbox, smtp, "smtp"))
    for svc in ("ingest", "classifier", "dispatcher", "console"):
        must_not.append((f"{svc} -> sandbox:{http}", pods[svc], sandbox, http, "http"))
    must_not.append(
        (f"ingress controller -> sandbox:{http}", INGRESS_CONTROLLER, sandbox, http, "http")
    )
    must_not.append(
        (f"prometheus -> sandbox:{http} (no metrics there)", PROMETHEUS, sandbox, http, "http")
    )
    must_not.append(("sandbox -> internet:443", sandbox, PROVIDER_IP, 443, None))
    must_not.append(("sandbox -> kafka:9092", sandbox, kafka, 9092, None))
    if r.get("StatefulSet", "mongodb") is not None:
        must_not.append(("sandbox -> mongodb:27017", sandbox, pods["mongodb"], 27017, None))


# --------------------------------------------------------------------------- overlays


def check_overlay(
    r: Rendered, services: tuple[str, ...], autoscaled: tuple[str, ...] | None = None
) -> list[str]:
    """What makes dev dev and prod prod. In prod the `autoscaled` services carry no `replicas`
    (their autoscaler owns the count); the others (the console) pin at least 2."""
    autoscaled = services if autoscaled is None else autoscaled
    problems = []
    common_cm = generated(r, "ConfigMap", "hotline-common")
    common = config_data(r, "ConfigMap", common_cm["metadata"]["name"]) if common_cm else {}
    common = common or {}
    want_env = {"dev": "development", "prod": "production"}.get(r.overlay)
    if want_env and common.get("HOTLINE_ENV") != want_env:
        problems.append(
            f"[{r.overlay}] HOTLINE_ENV is {common.get('HOTLINE_ENV')!r}, expected {want_env}"
        )
    if r.overlay == "dev":
        for svc in services:
            dep = r.get("Deployment", svc)
            if dep is not None and dep["spec"].get("replicas") != 1:
                problems.append(f"[dev] {svc}: replicas should be 1")
    if r.overlay == "prod":
        if r.of_kind("Secret"):
            problems.append(
                "[prod] the overlay generates Secrets "
                f"({', '.join(s['metadata']['name'] for s in r.of_kind('Secret'))}); prod only "
                "references them"
            )
        for svc in services:
            dep = r.get("Deployment", svc)
            if dep is None:
                continue
            labels = dep["spec"]["template"]["metadata"].get("labels", {})
            if not any(
                selector_matches(p["spec"]["selector"], labels)
                for p in r.of_kind("PodDisruptionBudget")
            ):
                problems.append(f"[prod] {svc}: no PodDisruptionBudget")
            affinity = dep["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity")
            if not affinity:
                problems.append(f"[prod] {svc}: no pod anti-affinity")
            if svc in autoscaled:
                if "replicas" in dep["spec"]:
                    problems.append(f"[prod] {svc}: sets replicas, which fights its autoscaler")
            elif dep["spec"].get("replicas", 1) < 2:
                problems.append(
                    f"[prod] {svc}: {dep['spec'].get('replicas', 1)} replica(s); it has no "
                    "autoscaler, so prod should run at least 2"
                )
        sts = r.get("StatefulSet", "mongodb")
        if sts is not None and sts["spec"]["replicas"] < 3:
            problems.append("[prod] MongoDB should run 3 replica set members")
    return problems


def example_secret_data(dev: Rendered) -> dict[str, dict[str, str]]:
    """The Secrets of the example-secrets component (rendered in dev) by name (hash suffix off)."""
    out = {}
    for secret in dev.of_kind("Secret"):
        data = config_data(dev, "Secret", secret["metadata"]["name"]) or {}
        out[secret["metadata"]["name"]] = data
        out[re.sub(r"-[a-z0-9]{10}$", "", secret["metadata"]["name"])] = data
    return out


def check_placeholders_refused(
    dev: Rendered, settings: dict[str, ServiceSettings | None], services: tuple[str, ...]
) -> list[str]:
    """The example secrets start the services in development and are refused in production:
    build each service's settings from its dev env with HOTLINE_ENV switched to production."""
    import os

    from pydantic import ValidationError

    problems = []
    examples = example_secret_data(dev)
    for svc in services:
        s = settings.get(svc)
        dep = dev.get("Deployment", svc)
        if s is None or dep is None:
            continue
        raw_env, _ = container_env(dev, dep["spec"]["template"]["spec"]["containers"][0], examples)
        env = {k: v for k, v in raw_env.items() if v is not None}
        # Does the service get secrets from the example Secrets (its own, or MONGODB_URI with
        # the example's placeholder password)?
        has_secret = any(k.upper() in s.env and s.env[k.upper()].secret for k in env)
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(env)
            try:
                s.settings_cls()
            except ValidationError as exc:
                problems.append(f"[dev] {svc}: the dev settings do not start the service: {exc}")
            os.environ["HOTLINE_ENV"] = "production"
            try:
                s.settings_cls()
                if has_secret:
                    problems.append(
                        f"[dev→production] {svc}: placeholder secrets were accepted with "
                        "HOTLINE_ENV=production"
                    )
            except ValidationError as exc:
                if "placeholder" not in str(exc):
                    problems.append(
                        f"[dev→production] {svc}: refused, but not for its placeholders: {exc}"
                    )
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return problems
