# Hotline: `make run` brings the whole system up locally; `make test` runs every test.
# Every target calls the same scripts CI calls (.ci/run -> make lint test).

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION    ?= 0.9.5
HOTLINE_CACHE ?= $(HOME)/.cache/hotline
UV            ?= $(shell command -v uv 2>/dev/null || echo $(HOTLINE_CACHE)/uv-$(UV_VERSION)/bin/uv)
VENV          := .venv
PY            := $(VENV)/bin/python
STACK         := $(PY) deploy/local/stack.py
PYTEST_ARGS   ?=
SCENARIO      ?= day
BENCH_ARGS    ?=

export UV_CACHE_DIR ?= $(HOME)/.cache/uv

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_-]+:.*?## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(HOTLINE_CACHE)/uv-$(UV_VERSION)/bin/uv:
	@command -v python3 >/dev/null || { echo "python3 not found: install Python 3.11+ (https://www.python.org/downloads/)"; exit 1; }
	@echo "install: bootstrapping uv $(UV_VERSION) into $(HOTLINE_CACHE) (first run only)"
	@python3 -m venv $(HOTLINE_CACHE)/uv-$(UV_VERSION)
	@$(HOTLINE_CACHE)/uv-$(UV_VERSION)/bin/pip install --progress-bar off uv==$(UV_VERSION)

.PHONY: install
install: $(if $(shell command -v uv 2>/dev/null),,$(HOTLINE_CACHE)/uv-$(UV_VERSION)/bin/uv) ## Create .venv with every package (editable) and the dev tools
	@# The first sync downloads every package: uv says what it resolves, fetches and installs.
	@# Later ones have nothing to say but "audited" and stay quiet (a second run: ~1 s).
	@$(if $(wildcard $(PY)),,echo "install: creating $(VENV) from uv.lock (first run: downloads the packages)")
	@$(UV) sync --all-packages --frozen $(if $(wildcard $(PY)),--quiet,)
	@$(PY) -c "import hotline, hotline_ingest, hotline_classifier, hotline_dispatcher, hotline_notifier, hotline_cli" \
		|| { echo "install: the packages did not import; see the error above"; exit 1; }

.PHONY: lock
lock: ## Re-resolve dependencies into uv.lock
	$(UV) lock

.PHONY: stack-up
stack-up: install ## Start Kafka (KRaft) and FerretDB on 127.0.0.1 (idempotent)
	@$(STACK) up

.PHONY: stack-down
stack-down: ## Stop what stack-up started (by PID file)
	@$(STACK) down

.PHONY: stack-status
stack-status: ## Show each stack component's state and address
	@$(STACK) status

.PHONY: stack-reset
stack-reset: ## Stop the stack and wipe its data
	@$(STACK) reset

.PHONY: run
run: install ## Start the stack and all services, play a scenario (SCENARIO=day|flood), Ctrl-C stops
	@$(PY) deploy/local/run.py --scenario $(SCENARIO)

.PHONY: test
test: install ## Run the whole test suite against the real stack (starts it if needed); lists the 25 slowest tests
	@$(STACK) with-stack -- $(PY) -m pytest --durations=25 $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: install ## Run only the tests that need no stack
	@$(PY) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

.PHONY: bench
bench: install ## Benchmark the pipeline against the raw Kafka ceiling (BENCH_ARGS=--quick for a smoke run)
	@$(STACK) with-stack -- $(VENV)/bin/hotline bench $(BENCH_ARGS)

.PHONY: lint
lint: install ## ruff (lint + format check) and mypy --strict
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy libs/hotline/src services/*/src tools/*/src deploy/local deploy/check

.PHONY: fmt
fmt: install ## Format the code with ruff
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

.PHONY: k8s-check
k8s-check: install ## Validate deploy/ offline: overlays, k8s schemas + CRDs, promtool, PromQL vs metrics, settings
	@$(PY) -m deploy.check

.PHONY: screenshots
screenshots: install ## Refresh docs/screenshots from the console's browser tests (they save to test-artifacts/console)
	@$(STACK) with-stack -- $(PY) -m pytest -q services/console/tests/test_browser.py $(PYTEST_ARGS)
	@cp test-artifacts/console/*.png docs/screenshots/
	@echo "docs/screenshots/ refreshed from test-artifacts/console/"

.PHONY: train
train: install ## Rebuild the triage model deterministically
	@$(PY) -m hotline_classifier.train

.PHONY: clean
clean: ## Remove caches in the clone (not the stack data: see stack-reset)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis
