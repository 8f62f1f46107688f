# syntax=docker/dockerfile:1.7
#
# One image per Hotline service, built from one file: pick the service with --target.
#
#   docker build --target ingest     -t hotline/ingest:0.1.0 .
#   docker build --target classifier -t hotline/classifier:0.1.0 .
#   docker build --target dispatcher -t hotline/dispatcher:0.1.0 .
#   docker build --target notifier   -t hotline/notifier:0.1.0 .
#   docker build --target console    -t hotline/console:0.1.0 .
#   docker build --target sandbox    -t hotline/sandbox:0.1.0 .    # dev clusters only
#
# `sandbox` is the provider sandbox (services/sandbox): it plays the SMS, Zalo, Viber, WhatsApp,
# Telegram, webhook and SMTP providers so that a dev cluster works without real ones
# (deploy/k8s/components/provider-sandbox). It is never deployed in production.
#
# How it is put together:
# * `build` has uv and the workspace metadata; each `build-<service>` stage exports that service's
#   locked dependencies from uv.lock (`uv export --package`, hashes included), installs exactly
#   those into /opt/venv, then installs the shared library and the service itself (non-editable,
#   no dependency resolution: the lock file already decided everything).
# * `runtime` is python:3.11-slim plus a non-root user and nothing else: no compiler, no uv, no
#   source tree. The service stages copy /opt/venv into it.
# * The image runs with a read-only root filesystem: bytecode is compiled at build time,
#   PYTHONDONTWRITEBYTECODE stops attempts to write more, HOME and every scratch path point at
#   /tmp (an emptyDir in Kubernetes), faust's data dir included (APP_DATADIR).
# The uid/gid (10001) match runAsUser/runAsGroup in deploy/k8s; tests/deploy checks both.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_VERSION=0.9.5

# --------------------------------------------------------------------------- build stages
FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN pip install "uv==${UV_VERSION}" \
    && uv venv --python /usr/local/bin/python3.11 /opt/venv
WORKDIR /src
# The workspace metadata only: dependency layers stay cached until the lock file changes.
COPY pyproject.toml uv.lock ./
COPY libs/hotline/pyproject.toml libs/hotline/pyproject.toml
COPY services/ingest/pyproject.toml services/ingest/pyproject.toml
COPY services/classifier/pyproject.toml services/classifier/pyproject.toml
COPY services/dispatcher/pyproject.toml services/dispatcher/pyproject.toml
COPY services/notifier/pyproject.toml services/notifier/pyproject.toml
COPY services/sandbox/pyproject.toml services/sandbox/pyproject.toml
COPY services/console/pyproject.toml services/console/pyproject.toml
COPY tools/cli/pyproject.toml tools/cli/pyproject.toml

FROM build AS build-ingest
RUN uv export --frozen --no-dev --no-emit-workspace --package hotline-ingest -o /tmp/requirements.txt \
    && uv pip install --python /opt/venv/bin/python --require-hashes -r /tmp/requirements.txt
COPY libs/hotline libs/hotline
COPY services/ingest services/ingest
RUN uv pip install --python /opt/venv/bin/python --no-deps ./libs/hotline ./services/ingest

FROM build AS build-classifier
RUN uv export --frozen --no-dev --no-emit-workspace --package hotline-classifier -o /tmp/requirements.txt \
    && uv pip install --python /opt/venv/bin/python --require-hashes -r /tmp/requirements.txt
COPY libs/hotline libs/hotline
COPY services/classifier services/classifier
RUN uv pip install --python /opt/venv/bin/python --no-deps ./libs/hotline ./services/classifier

FROM build AS build-dispatcher
RUN uv export --frozen --no-dev --no-emit-workspace --package hotline-dispatcher -o /tmp/requirements.txt \
    && uv pip install --python /opt/venv/bin/python --require-hashes -r /tmp/requirements.txt
COPY libs/hotline libs/hotline
COPY services/dispatcher services/dispatcher
RUN uv pip install --python /opt/venv/bin/python --no-deps ./libs/hotline ./services/dispatcher

FROM build AS build-notifier
RUN uv export --frozen --no-dev --no-emit-workspace --package hotline-notifier -o /tmp/requirements.txt \
    && uv pip install --python /opt/venv/bin/python --require-hashes -r /tmp/requirements.txt
COPY libs/hotline libs/hotline
COPY services/notifier services/notifier
RUN uv pip install --python /opt/venv/bin/python --no-deps ./libs/hotline ./services/notifier

FROM build AS build-console
RUN uv export --frozen --no-dev --no-emit-workspace --package hotline-console -o /tmp/requirements.txt \
    && uv pip install --python /opt/venv/bin/python --require-hashes -r /tmp/requirements.txt
COPY libs/hotline libs/hotline
COPY services/console services/console
RUN uv pip install --python /opt/venv/bin/python --no-deps ./libs/hotline ./services/console

# The sandbox does not use the shared library: only its own locked dependencies and itself.
FROM build AS build-sandbox
RUN uv export --frozen --no-dev --no-emit-workspace --package hotline-sandbox -o /tmp/requirements.txt \
    && uv pip install --python /opt/venv/bin/python --require-hashes -r /tmp/requirements.txt
COPY services/sandbox services/sandbox
RUN uv pip install --python /opt/venv/bin/python --no-deps ./services/sandbox

# --------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
# No build tools here: the slim base has none, and nothing is installed on top of it. pip and
# setuptools of the base image are removed: the service never installs anything at run time.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel 2>/dev/null || true \
    && groupadd --system --gid 10001 hotline \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin hotline
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    APP_DATADIR=/tmp/faust
WORKDIR /tmp
USER 10001:10001

FROM runtime AS ingest
COPY --from=build-ingest /opt/venv /opt/venv
ENV INGEST_HOST=0.0.0.0
EXPOSE 8001
ENTRYPOINT ["python", "-m", "hotline_ingest.main"]

FROM runtime AS classifier
COPY --from=build-classifier /opt/venv /opt/venv
ENV CLASSIFIER_HOST=0.0.0.0
EXPOSE 8002
ENTRYPOINT ["python", "-m", "hotline_classifier.main"]

FROM runtime AS dispatcher
COPY --from=build-dispatcher /opt/venv /opt/venv
ENV DISPATCHER_HOST=0.0.0.0
EXPOSE 8003
ENTRYPOINT ["python", "-m", "hotline_dispatcher.main"]

FROM runtime AS notifier
COPY --from=build-notifier /opt/venv /opt/venv
ENV NOTIFIER_HOST=0.0.0.0
EXPOSE 8004
ENTRYPOINT ["python", "-m", "hotline_notifier.main"]

FROM runtime AS console
COPY --from=build-console /opt/venv /opt/venv
ENV CONSOLE_HOST=0.0.0.0
EXPOSE 8005
ENTRYPOINT ["python", "-m", "hotline_console.main"]

# Dev clusters only: HTTP providers on 8009 (SANDBOX_PORT), SMTP on 8025 (SANDBOX_SMTP_PORT).
FROM runtime AS sandbox
COPY --from=build-sandbox /opt/venv /opt/venv
ENV SANDBOX_HOST=0.0.0.0
EXPOSE 8009 8025
ENTRYPOINT ["python", "-m", "hotline_sandbox.main"]
