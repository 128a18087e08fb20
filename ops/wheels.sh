#!/usr/bin/env bash
# Download, on the host, the pinned wheels the images need, for the Python version and platform of the
# base image, into .images/wheels/ (part of the build context). The Dockerfiles install them with
# --no-index when built with PIP_NO_INDEX=1: this is how images build where containers reach no PyPI.
# Usage: ops/wheels.sh PYTHON_VERSION (for example 3.11). Skips the download when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

py_version=${1:?usage: ops/wheels.sh PYTHON_VERSION}
dest=.images/wheels
tag=cp${py_version/./}
arch=$(uname -m)
stamp=$dest/.stamp-$tag-$arch

# Runtime dependencies of podkit and the four services (our own packages are built inside the images),
# plus the build backend that builds them.
requirements=$(python3 ops/deps.py --with-build-backend lib/podkit/pyproject.toml services/*/pyproject.toml)
wanted=$(printf '%s\n%s\n' "$requirements" "$(sha256sum requirements/lock.txt)")
if [[ -f $stamp && "$(cat "$stamp")" == "$wanted" ]]; then
    printf 'wheels: %s wheels for %s %s are current\n' "$dest" "$tag" "$arch" >&2
    exit 0
fi

mkdir -p "$dest"
printf 'wheels: downloading for %s %s into %s\n' "$tag" "$arch" "$dest" >&2
mapfile -t reqs <<<"$requirements"
# pip does not widen --platform to older glibc tags: list every manylinux tag glibc 2.36 (Debian 12) runs.
platforms=(--platform "manylinux2014_$arch")
for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
python3 -m pip download -qq --disable-pip-version-check --dest "$dest" \
    --only-binary=:all: --implementation cp --python-version "$py_version" --abi "$tag" \
    "${platforms[@]}" --constraint requirements/lock.txt "${reqs[@]}"
printf '%s' "$wanted" >"$stamp"
