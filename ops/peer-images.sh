#!/usr/bin/env bash
# `make images-peers`: the images of the pod's optional peers in docker-compose.yml, redis (profile `scale`)
# and rsyslog with RELP (profile `logging`), built the air-gapped way: their Debian packages go into a base
# made on the host with debootstrap (ops/base-image.sh with EXTRA_PACKAGES, once), because a build here
# reaches no network, so no apt inside it. The Dockerfiles (ops/redis.Dockerfile, ops/rsyslog.Dockerfile)
# only add a user, the configuration and the command. Environment: PEERS_BASE_IMAGE (a base of your own
# that has rsyslog, rsyslog-relp and redis-server), LOGINPOD_VERSION (the images' tag, default 0.1.0).
set -euo pipefail
cd "$(dirname "$0")/.."

PEERS_BASE_IMAGE=${PEERS_BASE_IMAGE:-loginpod/peers-base:bookworm}
EXTRA_PACKAGES=rsyslog,rsyslog-relp,redis-server ops/base-image.sh "$PEERS_BASE_IMAGE"
export PEERS_BASE_IMAGE
docker compose --profile scale --profile logging build --quiet redis rsyslog
docker image ls --filter "reference=loginpod/redis" --filter "reference=loginpod/rsyslog" \
    --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | sort >&2
