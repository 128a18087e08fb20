#!/usr/bin/env bash
# The local base image of the air-gapped build: Debian 12 with python3 and python3-venv, made from Debian
# packages (debootstrap) and imported into Docker, for machines that cannot pull python:3.12-slim.
# Usage: [EXTRA_PACKAGES=a,b] ops/base-image.sh [IMAGE]   (default loginpod/base:bookworm). Does nothing
# when IMAGE exists. EXTRA_PACKAGES adds Debian packages (for example rsyslog, for a logging image).
set -euo pipefail

IMAGE=${1:-loginpod/base:bookworm}
PACKAGES=python3,python3-venv,ca-certificates${EXTRA_PACKAGES:+,$EXTRA_PACKAGES}
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'base-image: %s\n' "$*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE exists, kept"
    exit 0
fi

# The Debian mirror apt already uses (deb822 sources first, then the classic list), else the default one.
mirror=$(awk '/^URIs:/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [[ -z $mirror ]]; then
    mirror=$(awk '/^deb / && !/security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /var/tmp/loginpod-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
log "debootstrap bookworm from $mirror (about a minute)"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 30 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

# What a runtime image never reads: package caches and lists, documentation, translations, logs.
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/* \
    "$rootfs"/etc/machine-id

log "importing as $IMAGE"
tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change "ENV PATH=$PATH_ENV" \
    --change "ENV LANG=C.UTF-8" \
    --change 'CMD ["python3"]' \
    --change 'LABEL org.opencontainers.image.title="loginpod-base" org.opencontainers.image.description="Debian 12 minbase with python3 (air-gapped build)"' \
    - "$IMAGE" >/dev/null
docker image ls "$IMAGE"
