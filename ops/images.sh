#!/usr/bin/env bash
# `make images`: build the pod's images with docker compose, from the public python:3.12-slim base when it
# can be had, else the "air-gapped build": a local Debian base image (ops/base-image.sh) and the pinned
# wheels downloaded on the host (ops/wheels.sh), installed with pip --no-index. Same Dockerfiles either way.
# Environment: BASE_IMAGE (a base of your own; then PIP_NO_INDEX=1 feeds it the host's wheels),
# AIRGAPPED=1 (skip the public base), LOGINPOD_VERSION (the images' tag, default 0.1.0).
set -euo pipefail
cd "$(dirname "$0")/.."

PUBLIC_BASE=python:3.12-slim
LOCAL_BASE=loginpod/base:bookworm
log() { printf 'images: %s\n' "$*" >&2; }

if [[ -z ${BASE_IMAGE:-} ]]; then
    if [[ ${AIRGAPPED:-0} != 1 ]] && { docker image inspect "$PUBLIC_BASE" >/dev/null 2>&1 \
        || timeout 120 docker pull --quiet "$PUBLIC_BASE" >/dev/null 2>&1; }; then
        BASE_IMAGE=$PUBLIC_BASE
    else
        log "$PUBLIC_BASE cannot be pulled: air-gapped build on $LOCAL_BASE"
        ops/base-image.sh "$LOCAL_BASE"
        BASE_IMAGE=$LOCAL_BASE
        PIP_NO_INDEX=1
    fi
fi
PIP_NO_INDEX=${PIP_NO_INDEX:-0}

if [[ $PIP_NO_INDEX == 1 ]]; then
    py_version=$(docker run --rm --network none --entrypoint python3 "$BASE_IMAGE" \
        -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    ops/wheels.sh "$py_version"
fi

LOGINPOD_REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
LOGINPOD_SOURCE=$(git remote get-url origin 2>/dev/null || echo unknown)
export BASE_IMAGE PIP_NO_INDEX LOGINPOD_REVISION LOGINPOD_SOURCE
log "building on $BASE_IMAGE (PIP_NO_INDEX=$PIP_NO_INDEX)"
docker compose build --quiet "$@"

# The images these replaced, now untagged: removed unless a container still uses them.
docker image ls --quiet --no-trunc --filter dangling=true --filter label=org.opencontainers.image.title \
    | xargs -r docker image inspect --format '{{.Id}} {{index .Config.Labels "org.opencontainers.image.title"}}' \
    | awk '$2 ~ /^loginpod-/ {print $1}' | xargs -r docker image rm >/dev/null 2>&1 || true
docker image ls --filter "reference=loginpod/*" --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | sort >&2
