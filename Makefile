# The login pod. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PACKAGES := lib/podkit services/webserver services/ambassador services/login-sidecar services/adapter tools/localpod

.DEFAULT_GOAL := help
.PHONY: help install lock run test test-env test-unit lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/lock.txt $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation $(foreach p,$(PACKAGES),-e $(p))
	touch $@

install: $(VENV)/.installed ## a virtual environment with all services and test tools (pinned)

lock: ## re-pin requirements/lock.txt from requirements/dev.in
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv && .lockvenv/bin/pip install --quiet -r requirements/dev.in
	.lockvenv/bin/pip freeze --all --exclude-editable | grep -v -e "^-e" -e "^pip==" > requirements/lock.txt && rm -rf .lockvenv

run: install ## the pod as four local processes (ambassador on 127.0.0.1:8000); Ctrl-C stops it
	$(PY) -m localpod

test: install test-env ## all tests (as root it first installs the engines the container tests need)
	$(PY) -m pytest

test-env: ## as root: install and start what the container and pod tests need (idempotent, fast when present)
	@if [ "$$(id -u)" != 0 ]; then echo "test-env: not root, using the engines already here"; \
	else for script in ops/ci-containers.sh ops/ci-k8s.sh; do [ ! -x $$script ] || ./$$script || exit 1; done; fi

test-unit: install ## the unit tests of podkit and the services only
	$(PY) -m pytest lib/podkit/tests services

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy lib/podkit/src services/*/src tools/localpod/src

clean: ## remove the local-mode state (.run/)
	rm -rf .run
