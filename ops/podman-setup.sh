#!/usr/bin/env bash
# Podman for `podman kube play k8s/pod.yaml` on a Debian 12 machine, as root (docs/kubernetes.md).
#   ops/podman-setup.sh            install podman (4.3 from Debian) and write its settings
#   ops/podman-setup.sh images     the same, then copy the pod's images from Docker into podman
# Idempotent and quick when all is there already: `make pod-up`, ops/ci-k8s.sh and tests/k8s call it.
set -euo pipefail
cd "$(dirname "$0")/.."

CONF=/etc/containers/containers.conf.d/50-loginpod.conf
log() { printf 'podman-setup: %s\n' "$*" >&2; }

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v catatonit >/dev/null || missing+=(catatonit)
command -v runc >/dev/null || missing+=(runc)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Without these every container of the pod fails to start on our machines: runc cannot raise the open
# files and processes limits it inherits ("error setting rlimit type 7"), and crun cannot cope with the
# hybrid cgroups. The unprivileged-port sysctl is the pod's own (k8s/pod.yaml asks for it): podman 4.3's
# kube play ignores pod sysctls (support came in 4.5), so it is set as podman's default here instead.
# ping_group_range is podman's own default, which a default_sysctls list would otherwise drop.
want=$(cat <<'EOF'
# Written by ops/podman-setup.sh (the login pod); see docs/kubernetes.md.
[containers]
default_sysctls = ["net.ipv4.ping_group_range=0 0", "net.ipv4.ip_unprivileged_port_start=0"]
default_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
)
if [[ ! -f $CONF || $(cat "$CONF") != "$want" ]]; then
    log "writing $CONF"
    mkdir -p "$(dirname "$CONF")"
    printf '%s\n' "$want" >"$CONF"
fi
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}')
[[ $runtime == runc ]] || { log "podman uses $runtime, not runc: is $CONF overridden?"; exit 1; }

[[ ${1:-} == images ]] || exit 0

# The images the manifest names (k8s/pod.yaml is the one list), built by `make images` into Docker.
mapfile -t images < <(sed -n 's/^[[:space:]]*image:[[:space:]]*\([^[:space:]#]*\).*/\1/p' k8s/pod.yaml | sort -u)
((${#images[@]})) || { log "no image: lines in k8s/pod.yaml"; exit 1; }
for image in "${images[@]}"; do
    docker_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) \
        || { log "$image is not in Docker: run 'make images' first"; exit 1; }
    podman_id=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    if [[ sha256:$podman_id == "$docker_id" || $podman_id == "$docker_id" ]]; then
        continue
    fi
    log "copying $image from Docker into podman"
    podman pull --quiet "docker-daemon:$image" >/dev/null
    # The copy it replaces, unless a container still uses it: rebuilds would otherwise pile up.
    [[ -z $podman_id ]] || podman rmi "$podman_id" >/dev/null 2>&1 || true
done
