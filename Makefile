# The login pod. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PACKAGES := lib/podkit lib/podkit-testing services/webserver services/ambassador services/login-sidecar services/adapter tools/localpod

.DEFAULT_GOAL := help
.PHONY: help install lock run test test-env test-unit lint clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

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

test-env: ## as root: install what the peer, container and pod tests need (idempotent, fast when present)
	@if [ "$$(id -u)" != 0 ]; then echo "test-env: not root, using the engines already here"; \
	else for script in ops/ci-peers.sh ops/ci-containers.sh ops/ci-k8s.sh ops/ci-nginx.sh; do [ ! -x $$script ] || ./$$script || exit 1; done; fi

test-unit: install ## the unit tests of podkit and the services only
	$(PY) -m pytest lib/*/tests services

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy lib/*/src services/*/src tools/localpod/src

.PHONY: bench
bench: install ## benchmarks of issue 5 (< 10 min): bench/results/, docs/benchmarks.md, docs/bench.png
	bench/setup.sh
	$(PY) -m bench

clean: ## remove the local-mode state (.run/)
	rm -rf .run

# Containers (docs/containers.md): the images, and the pod as a docker compose project.
.PHONY: images images-peers up down
images: ## build the four images (the air-gapped way when python:3.12-slim cannot be pulled)
	ops/images.sh

images-peers: ## build the redis and rsyslog images of the compose profiles scale and logging (from Debian packages)
	ops/peer-images.sh

# PROFILES="scale logging" also starts redis and rsyslog (set LOGINPOD_REDIS_URL / LOGINPOD_SINK_URL: README).
up: images $(if $(PROFILES),images-peers) ## start the pod in Docker (ambassador on host port LOGINPOD_PORT, default 80) and wait until healthy
	docker compose $(foreach p,$(PROFILES),--profile $(p)) up --detach --wait --wait-timeout 180

down: ## stop the Docker pod (and the peers of every profile); VOLUMES=1 also removes its volumes
	docker compose --profile scale --profile logging down $(if $(VOLUMES),--volumes)

# Kubernetes (docs/kubernetes.md): the manifests in k8s/, checked, and run as a pod by podman.
.PHONY: tools k8s-validate pod-up pod-down
TOOLS_VENV := .venv-tools/checkov
$(TOOLS_VENV)/.installed: requirements/checkov.txt
	rm -rf $(TOOLS_VENV) && $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --no-deps -r requirements/checkov.txt
	touch $@

tools: $(TOOLS_VENV)/.installed ## checkov, in a venv of its own (its pins clash with lock.txt's)

k8s-validate: install tools ## k8s/: strict schemas (Kubernetes 1.29 and newest), restricted profile, checkov, hadolint
	$(PY) -m pytest tests/k8s -m "not pod"

pod-up: install ## as root: k8s/pod.yaml as a podman pod (ambassador on 127.0.0.1:POD_PORT, default 8080)
	ops/podman-setup.sh images
	$(PY) ops/kubeplay.py up $(if $(POD_PORT),--host-port $(POD_PORT))

pod-down: ## remove the podman pod, its volumes and its Secret
	$(PY) ops/kubeplay.py down
