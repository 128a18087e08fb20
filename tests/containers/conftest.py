"""Fixtures of the container tests: the Docker engine, the images, and one compose pod for the session."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

# The tests import their helper module (composepod) from this directory; pytest's pythonpath holds tests/ only.
sys.path.append(str(Path(__file__).parent))

from composepod import REPO_ROOT, ComposePod, docker_engine
from support import free_port


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    return docker_engine()


@pytest.fixture(scope="session")
def images(engine: docker.DockerClient) -> None:
    """The images of the code under test: `make images` (quick when nothing changed)."""
    subprocess.run([str(REPO_ROOT / "ops" / "images.sh")], cwd=REPO_ROOT, check=True, timeout=1800)


@pytest.fixture(scope="session")
def pod(engine: docker.DockerClient, images: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposePod]:
    """One pod shared by the tests that leave it as they found it (running and healthy)."""
    running = ComposePod(engine, port=free_port(), workdir=tmp_path_factory.mktemp("pod"))
    try:
        running.up()
        yield running
    finally:
        running.down(volumes=True)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client
