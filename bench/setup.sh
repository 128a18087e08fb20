#!/usr/bin/env bash
# What `make bench` needs besides the virtual environment: wrk (load) and nginx (the peer proxy), from Debian.
# As root it installs whichever is missing (one `apt-get update` first); otherwise it only says what is missing.
# nginx is only ever started by the benchmark itself, with its own configuration on free ports: the package's
# own service is stopped again if the install started it.
set -euo pipefail

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "bench/setup.sh: missing ${missing[*]}; install them (apt-get install -y ${missing[*]}) or run as root" >&2
    exit 1
fi
echo "bench/setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# a package install may start the distribution's nginx on port 80; the benchmark runs its own
if [ -f /run/nginx.pid ]; then
    /usr/sbin/nginx -s quit 2>/dev/null || true
fi
