#!/usr/bin/env bash
# nginx (and wrk) from Debian, for the ambassador's tests that take nginx as the reference proxy
# (services/ambassador/tests/test_hardening.py) and for the benchmark's smoke test. One installer for
# both: bench/setup.sh, which installs whichever is missing and leaves the distribution's own nginx
# service stopped (the tests and the benchmark run nginx themselves, on free loopback ports).
# Idempotent and quick when all is there already: `make test-env` calls it on every run, as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
printf 'ci-nginx: ready: %s\n' "$(/usr/sbin/nginx -v 2>&1)" >&2
