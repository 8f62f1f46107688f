"""The provider sandbox (services/sandbox) in the overlays.

A dev cluster has no real SMS, Zalo, Viber, WhatsApp, Telegram or SMTP providers: it runs the
sandbox (components/provider-sandbox) and points the notifier at it. Production never renders it,
and there the notifier's endpoints are the real providers.

What the sandbox plays comes from its code, not from a list kept here:
`SandboxHandle.notifier_env()` names the notifier variables it stands in for and the URL path of
each; `create_app()` gives its routes (the probes' path); `SandboxSettings` its variables and the
credentials it checks, which must be the ones the notifier sends.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from pydantic import SecretStr

from deploy.check.catalog import ServiceSettings
from deploy.check.consistency import (
    LOCALHOST,
    config_data,
    container_env,
    generated,
    name,
    selector_matches,
    service_account_problem,
    workloads,
)
from deploy.check.render import Obj, Rendered

SANDBOX = "sandbox"
NOTIFIER = "notifier"
HEALTH_PATH = "/healthz"
NOT_CREDENTIALS = {"host", "port", "smtp_port", "log_level"}
"""SandboxSettings fields that share a name with a NotifierSettings field without being a
credential both sides must agree on (each listens or connects on its own side)."""
CREDENTIAL_ALIASES = {"webhook_secret": "webhook_signing_secret"}
"""SandboxSettings field → the NotifierSettings field holding the same secret under another name."""
TRUE = {"1", "true", "yes", "on"}


def notifier_endpoints(
    base_url: str = "http://sandbox:8009", smtp_host: str = "sandbox", smtp_port: int = 8025
) -> dict[str, str]:
    """The notifier variables the sandbox stands in for → their value for a sandbox at
    base_url (HTTP) and smtp_host:smtp_port, as the sandbox itself gives them."""
    from hotline_sandbox.server import SandboxHandle

    handle = SandboxHandle(None, base_url, smtp_host, smtp_port)  # type: ignore[arg-type]
    return handle.notifier_env()


def sandbox_get_routes() -> set[str]:
    """The paths the sandbox's app answers with GET."""
    from hotline_sandbox.app import Sandbox, create_app
    from hotline_sandbox.settings import SandboxSettings

    app = create_app(Sandbox(SandboxSettings()))
    return {
        route.path
        for route in app.routes
        if "GET" in (getattr(route, "methods", None) or set()) and hasattr(route, "path")
    }


def credential_pairs(sandbox: ServiceSettings, notifier: ServiceSettings) -> dict[str, str]:
    """SandboxSettings field → the NotifierSettings field whose value it must equal."""
    sandbox_fields = {v.field for v in sandbox.env.values()}
    notifier_fields = {v.field for v in notifier.env.values()}
    pairs = {f: f for f in sandbox_fields & notifier_fields if f not in NOT_CREDENTIALS} | {
        s: n for s, n in CREDENTIAL_ALIASES.items() if s in sandbox_fields
    }
    return dict(sorted(pairs.items()))


def _effective(
    env: dict[str, str | None], s: ServiceSettings, field: str
) -> tuple[str | None, str | None, bool]:
    """(variable, value, explicitly set) of a settings field: from the pod's env, else its
    default."""
    upper = {k.upper(): v for k, v in env.items()}
    for var_name, var in s.env.items():
        if var.field == field and var_name in upper:
            return var_name, upper[var_name], True
    default = s.default(field)
    if isinstance(default, SecretStr):
        default = default.get_secret_value()
    names = [n for n, v in s.env.items() if v.field == field]
    return (names[0] if names else None), (None if default is None else str(default)), False


def _notifier_env(
    r: Rendered, example_secrets: dict[str, dict[str, str]]
) -> dict[str, str | None] | None:
    dep = r.get("Deployment", NOTIFIER)
    if dep is None:
        return None
    env, _ = container_env(r, dep["spec"]["template"]["spec"]["containers"][0], example_secrets)
    return env


def sandbox_objects(r: Rendered) -> list[str]:
    """Everything in the overlay that is (or runs, or admits) the sandbox."""
    found = []
    for obj in r.objects:
        md = obj.get("metadata") or {}
        labels = md.get("labels") or {}
        admits_sandbox = obj.get("kind") == "NetworkPolicy" and (
            json.dumps({"app.kubernetes.io/name": SANDBOX})[1:-1] in json.dumps(obj["spec"])
        )
        if (
            SANDBOX in md.get("name", "")
            or labels.get("app.kubernetes.io/name") == SANDBOX
            or admits_sandbox
        ):
            found.append(name(obj))
    for obj, spec in workloads(r):
        for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            repo = c.get("image", "").rsplit(":", 1)[0]
            if repo.rsplit("/", 1)[-1] == SANDBOX and name(obj) not in found:
                found.append(name(obj))
    return found


def _hostname(value: str) -> str:
    return (urlsplit(value).hostname or "") if "//" in value else value


def _is_sandbox_host(host: str) -> bool:
    return host == SANDBOX or host.startswith(f"{SANDBOX}.")


def check_sandbox(
    r: Rendered,
    sandbox: ServiceSettings | None,
    notifier: ServiceSettings | None,
    example_secrets: dict[str, dict[str, str]],
) -> list[str]:
    """Production renders no sandbox and sends to real providers; elsewhere the notifier's
    provider endpoints never point at localhost, and where the sandbox is deployed it is a sound
    Deployment + Service + ServiceAccount that accepts the notifier's credentials, and every
    endpoint it plays points at its Service."""
    common_cm = generated(r, "ConfigMap", "hotline-common")
    common = (config_data(r, "ConfigMap", common_cm["metadata"]["name"]) if common_cm else {}) or {}
    production = r.overlay == "prod" or common.get("HOTLINE_ENV") == "production"
    where = f"[{r.overlay}]"
    problems: list[str] = []
    endpoints = notifier_endpoints()
    notifier_env = _notifier_env(r, example_secrets)

    def endpoint(var: str) -> tuple[str | None, bool]:
        """The notifier's effective value for one of the sandbox's variables."""
        assert notifier is not None and notifier_env is not None
        _, value, explicit = _effective(notifier_env, notifier, notifier.env[var].field)
        return value, explicit

    notifier_ok = notifier is not None and notifier_env is not None
    if notifier_ok:
        assert notifier is not None
        missing = sorted(set(endpoints) - set(notifier.env))
        if missing:
            problems.append(
                f"{where} the sandbox stands in for {', '.join(missing)}, which NotifierSettings "
                "does not read (renamed on one side?)"
            )
        for var in sorted(set(endpoints) & set(notifier.env)):
            value, explicit = endpoint(var)
            shown = f"{var}={value}" + ("" if explicit else " (the settings default)")
            if value and LOCALHOST.search(value):
                problems.append(
                    f"{where} notifier: {shown} points at localhost, where nothing listens in a "
                    "pod: include components/provider-sandbox (dev) or set the real provider"
                )
            if production:
                if not explicit:
                    problems.append(
                        f"{where} notifier: {var} is not set; production needs the real "
                        "provider, not the settings default"
                    )
                elif value and _is_sandbox_host(_hostname(value)):
                    problems.append(
                        f"{where} notifier: {var}={value} points at the provider sandbox in "
                        "production"
                    )
                elif var.endswith("_URL") and value and urlsplit(value).scheme != "https":
                    problems.append(f"{where} notifier: {var}={value} is not https in production")
    if production:
        problems += [
            f"{where} renders the provider sandbox ({obj}): it is for dev clusters only"
            for obj in sandbox_objects(r)
        ]
        return problems

    dep = r.get("Deployment", SANDBOX)
    if dep is None:
        return problems
    problems += _check_workload(r, dep, sandbox, notifier, example_secrets)

    # The notifier points at the sandbox's Service for everything the sandbox plays.
    service = r.get("Service", SANDBOX)
    if service is None or not notifier_ok:
        return problems
    ns = service["metadata"].get("namespace", "hotline")
    hosts = {SANDBOX, f"{SANDBOX}.{ns}", f"{SANDBOX}.{ns}.svc", f"{SANDBOX}.{ns}.svc.cluster.local"}
    sports = {p.get("name"): p.get("port") for p in service["spec"].get("ports", [])}
    for var, want in endpoints.items():
        if var not in (notifier.env if notifier else {}):
            continue
        value, _ = endpoint(var)
        value = value or ""
        if var.endswith("_URL"):
            got, expected = urlsplit(value), urlsplit(want)
            try:
                port = got.port
            except ValueError:  # not a number
                port = None
            ok = (
                got.scheme == "http"
                and got.hostname in hosts
                and port == sports.get("http")
                and got.path.rstrip("/") == expected.path.rstrip("/")
            )
            shape = f"http://sandbox.{ns}.svc:{sports.get('http')}{expected.path}"
        elif var.endswith("_HOST"):
            ok, shape = value in hosts, f"sandbox.{ns}.svc"
        else:  # the SMTP port: the Service's smtp port
            ok, shape = value == str(sports.get("smtp")), str(sports.get("smtp"))
        if not ok:
            problems.append(
                f"{where} notifier: {var}={value!r}, but the sandbox is deployed here and plays "
                f"it at {shape} (Service {SANDBOX} ports {sports})"
            )
    assert notifier is not None and notifier_env is not None
    for field in ("smtp_starttls", "smtp_use_tls"):
        tls_var, tls, _ = _effective(notifier_env, notifier, field)
        if tls is not None and tls.lower() in TRUE:
            problems.append(
                f"{where} notifier: {tls_var} is on, but the sandbox's SMTP server has no TLS"
            )
    return problems


def _check_workload(
    r: Rendered,
    dep: Obj,
    sandbox: ServiceSettings | None,
    notifier: ServiceSettings | None,
    example_secrets: dict[str, dict[str, str]],
) -> list[str]:
    where = f"[{r.overlay}] {SANDBOX}"
    problems: list[str] = []
    spec = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"].get("labels", {})
    if labels.get("app.kubernetes.io/name") != SANDBOX:
        problems.append(f"{where}: pods lack app.kubernetes.io/name={SANDBOX} (policies use it)")
    if labels.get("app.kubernetes.io/component") == "pipeline":
        problems.append(
            f"{where}: pods are labelled app.kubernetes.io/component=pipeline, which opens the "
            "pipeline's flows (Kafka, Prometheus scrapes) to a tool that needs neither"
        )
    if not selector_matches(dep["spec"]["selector"], labels):
        problems.append(f"{where}: the Deployment's selector does not match its pod labels")
    if dep["spec"].get("replicas") != 1:
        problems.append(
            f"{where}: replicas should be 1 (what it received, and Zalo's rotating tokens, live "
            "in one process's memory)"
        )
    if spec.get("enableServiceLinks") is not False:
        problems.append(
            f"{where}: enableServiceLinks must be false: the Service {SANDBOX} would inject "
            f"SANDBOX_PORT=tcp://…, which SandboxSettings reads as its port"
        )
    if (problem := service_account_problem(r, where, spec, SANDBOX)) is not None:
        problems.append(problem)
    containers = spec.get("containers", [])
    if len(containers) != 1:
        return [*problems, f"{where}: expected one container, found {len(containers)}"]
    c = containers[0]
    repo = c.get("image", "").rsplit(":", 1)[0]
    if repo.rsplit("/", 2)[-2:] != ["hotline", SANDBOX]:
        problems.append(
            f"{where}: image {c.get('image')!r} is not <registry>/hotline/{SANDBOX}:<tag> "
            "(the Dockerfile's sandbox target)"
        )
    env, refs = container_env(r, c, example_secrets)
    problems += [f"{where}: {p}" for p in refs]
    if sandbox is None:
        return problems
    # Env names are checked against SandboxSettings by the env check; here, what they mean.
    _, http_port, _ = _effective(env, sandbox, "port")
    _, smtp_port, _ = _effective(env, sandbox, "smtp_port")
    cports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    for pname, want in (("http", http_port), ("smtp", smtp_port)):
        if str(cports.get(pname)) != str(want):
            problems.append(
                f"{where}: container port {pname!r} is {cports.get(pname)}, the sandbox listens "
                f"on {want}"
            )
    routes = sandbox_get_routes()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != HEALTH_PATH or HEALTH_PATH not in routes:
            problems.append(
                f"{where}: {probe} must GET {HEALTH_PATH} (found {get.get('path')!r}; the app "
                f"serves {HEALTH_PATH}: {HEALTH_PATH in routes})"
            )
        if get.get("port") not in ("http", cports.get("http")):
            problems.append(f"{where}: {probe} targets port {get.get('port')!r}, not 'http'")
    service = r.get("Service", SANDBOX)
    if service is None:
        problems.append(f"{where}: no Service named {SANDBOX} (the notifier's endpoints name it)")
    else:
        if not selector_matches({"matchLabels": service["spec"].get("selector", {})}, labels):
            problems.append(f"{where}: the Service's selector does not match the pods")
        for pname in ("http", "smtp"):
            if not any(
                p.get("name") == pname and p.get("targetPort") in (pname, cports.get(pname))
                for p in service["spec"].get("ports", [])
            ):
                problems.append(f"{where}: the Service has no port {pname!r} -> {pname}")
    # The sandbox accepts exactly the credentials the notifier sends.
    notifier_env = _notifier_env(r, example_secrets)
    if notifier is None or notifier_env is None:
        return problems
    for s_field, n_field in credential_pairs(sandbox, notifier).items():
        s_var, s_value, _ = _effective(env, sandbox, s_field)
        n_var, n_value, _ = _effective(notifier_env, notifier, n_field)
        if s_value != n_value:
            problems.append(
                f"{where}: {s_var} differs from the notifier's {n_var}: the sandbox would refuse "
                "what the notifier sends (take both from the Secret hotline-notifier)"
            )
    return problems
