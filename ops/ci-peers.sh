#!/usr/bin/env bash
# The real peers the shared-state and syslog tests start themselves, as root on Debian 12: redis-server
# (the shared store of issue 10) and rsyslog with rsyslog-relp (imrelp: the external logging service) and
# rsyslog-gnutls (syslog over TLS).
# Only the programs: the tests run their own throwaway instances on free loopback ports, so the packages'
# system daemons are kept from starting while they install (policy-rc.d). Idempotent and quick when all is there.
set -euo pipefail

log() { printf 'ci-peers: %s\n' "$*" >&2; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v rsyslogd >/dev/null || missing+=(rsyslog)
[[ -n "$(find /usr/lib -path '*rsyslog/imrelp.so' -print -quit 2>/dev/null)" ]] || missing+=(rsyslog-relp)
# TLS syslog (RFC 5425) for the syslog+tls:// test: rsyslog's gnutls driver, and openssl for its certificate.
[[ -n "$(find /usr/lib -path '*rsyslog/lmnsd_gtls.so' -print -quit 2>/dev/null)" ]] || missing+=(rsyslog-gnutls)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    # policy-rc.d 101: do not start the packages' system daemons (no init here, and the tests need none).
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    if ((created_policy)); then rm -f "$policy"; fi
fi
redis-server --version >/dev/null
rsyslogd -v >/dev/null
log "redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'), $(rsyslogd -v | head -n 1)"
