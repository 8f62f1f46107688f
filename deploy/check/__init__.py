"""Offline validation of everything under deploy/: Kubernetes manifests, Prometheus rules,
Grafana dashboards and the Dockerfile, checked against the code they describe.

Run it with `python -m deploy.check` (what `make k8s-check` calls); tests/deploy runs the same
checks under pytest. Nothing here needs a cluster, Docker or the network after the first run:
kustomize is built once with `go install` into the Hotline cache, promtool comes from Debian's
`prometheus` package, Kubernetes schemas from the `kubernetes-validate` package and the
operators' CRDs from ../shared/k8s-crds.
"""
