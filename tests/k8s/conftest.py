"""Fixtures of the k8s tests: one podman pod of k8s/pod.yaml for the whole session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests import their helper module (kubepod) from this directory; pytest's pythonpath holds tests/ only.
sys.path.append(str(Path(__file__).parent))

from kubepod import REPO_ROOT, PodmanPod
from podkit_testing import skip_or_fail
from support import free_port


@pytest.fixture(scope="session")
def podman_ready() -> None:
    """Podman set up, with the images of `make images` (a skip, or under CI a failure, if not)."""
    if shutil.which("podman") is None:
        skip_or_fail("podman is not installed (ops/podman-setup.sh installs it)")
    # Podman's settings, and the images copied from Docker when they changed there (quick otherwise).
    setup = subprocess.run(
        [str(REPO_ROOT / "ops" / "podman-setup.sh"), "images"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if setup.returncode != 0:
        skip_or_fail(f"podman or the images are not ready: {setup.stderr.strip()}")


@pytest.fixture(scope="session")
def podman_pod(podman_ready: None) -> Iterator[PodmanPod]:
    """k8s/pod.yaml running under podman on a free host port, removed at the end."""
    pod = PodmanPod(f"loginpod-test-{os.getpid()}", free_port())
    try:
        pod.up()
        yield pod
    finally:
        pod.down()


@pytest.fixture
def own_podman_pod(podman_ready: None) -> Iterator[PodmanPod]:
    """A pod of its own, for a test that stops it."""
    pod = PodmanPod(f"loginpod-test-{os.getpid()}-own", free_port())
    try:
        pod.up()
        yield pod
    finally:
        pod.down()
