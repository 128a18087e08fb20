"""The compose pod seen from a test: one docker compose project of its own, on a free host port.

Each pod gets a unique project name (its own containers, network and volumes), so a developer's running
stack is never touched. What the pod wrote is read back through Docker (a stopped helper container that
mounts the volumes), which works as well while it runs as after `docker compose down`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import docker
import httpx
from docker.models.containers import Container
from podkit_testing import skip_or_fail
from support import REPO_ROOT, read_events, read_xml_events, wait_for

COMPOSE_FILES = (REPO_ROOT / "docker-compose.yml", Path(__file__).with_name("compose.test.yml"))
SERVICES = ("webserver", "ambassador", "login-sidecar", "adapter")
VERSION = os.environ.get("LOGINPOD_VERSION", "0.1.0")
DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


def docker_engine() -> docker.DockerClient:
    """A client of a running engine that has Compose v2, or a skip (a failure under CI) saying why not."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        skip_or_fail(f"no Docker engine: {exc}")
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if compose.returncode != 0:
        skip_or_fail(f"no docker compose v2: {compose.stderr.strip() or compose.stdout.strip()}")
    return client


def tag_agent() -> str:
    """A User-Agent unique to one test: the events carry it, so each test finds its own among all."""
    return f"loginpod-container-test/{uuid.uuid4().hex}"


class PodFiles:
    """A copy of the pod's volumes: the webserver's events file (the source) and /shared."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def source(self, agent: str) -> list[dict[str, Any]]:
        lines = [
            line
            for path in sorted((self.root / "loginpod").glob("events.jsonl*"))
            for line in path.read_bytes().splitlines()
        ]
        return [event for event in map(json.loads, lines) if event.get("user_agent") == agent]

    def events(self, agent: str) -> list[dict[str, Any]]:
        return [event for event in read_events(self.root / "shared" / "events") if event["user_agent"] == agent]

    def xml(self, agent: str) -> list[dict[str, str]]:
        return [record for record in read_xml_events(self.root / "shared" / "xml") if record["user_agent"] == agent]


class ComposePod:
    def __init__(self, client: docker.DockerClient, *, port: int, workdir: Path) -> None:
        self.client = client
        self.port = port
        self.project = f"loginpod-test-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "LOGINPOD_PORT": str(port)}

    def _command(self, *args: str) -> list[str]:
        files = [option for path in COMPOSE_FILES for option in ("--file", str(path))]
        return ["docker", "compose", *files, "--project-name", self.project, *args]

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = self._command(*args)
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{done.stderr}\n{self.logs()}")
        return done

    def up(self) -> None:
        self.compose("up", "--detach", "--no-build", "--wait", "--wait-timeout", "180")

    def down(self, *, volumes: bool) -> None:
        self.compose("down", *(["--volumes"] if volumes else []))

    def logs(self, tail: int = 40) -> str:
        command = self._command("logs", "--no-color", "--tail", str(tail))
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        return done.stdout[-8000:]

    def container(self, service: str) -> Container:
        labels = [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]
        found = self.client.containers.list(all=True, filters={"label": labels})
        assert len(found) == 1, f"{service}: {len(found)} containers"
        return found[0]

    def wait_healthy(self, service: str, *, restarts: int = 0, timeout: float = 90) -> Container:
        """Wait until the service has been restarted `restarts` times (at least) and is healthy again."""

        def healthy() -> Container | None:
            container = self.container(service)
            state = container.attrs["State"]
            if container.attrs["RestartCount"] < restarts or not state["Running"]:
                return None
            return container if state.get("Health", {}).get("Status") == "healthy" else None

        return wait_for(healthy, timeout=timeout, interval=0.2, what=f"{service} healthy")

    def crash(self, service: str) -> None:
        """SIGKILL the service's process as a crash would. `docker kill` would not do: Docker counts it as a
        manual stop and does not apply the restart policy. A helper in the host's PID namespace kills it,
        which works wherever the engine runs."""
        pid = self.container(service).attrs["State"]["Pid"]
        assert pid > 0, f"{service} is not running"
        self.client.containers.run(
            f"loginpod/pause:{VERSION}",
            ["python3", "-c", f"import os, signal; os.kill({pid}, signal.SIGKILL)"],
            pid_mode="host",
            user="0",
            network_disabled=True,
            remove=True,
        )

    def login(self, http: httpx.Client, agent: str) -> httpx.Response:
        return http.post(
            f"{self.base_url}/login",
            json={"username": DEMO_USER, "password": DEMO_PASSWORD},
            headers={"User-Agent": agent},
        )

    def files(self) -> PodFiles:
        """Copy the volumes out through a helper container that is created, never started."""
        dest = self.workdir / uuid.uuid4().hex
        volumes = {
            f"{self.project}_events": {"bind": "/var/log/loginpod", "mode": "ro"},
            f"{self.project}_shared": {"bind": "/shared", "mode": "ro"},
        }
        helper = self.client.containers.create(
            f"loginpod/adapter:{VERSION}", command=["true"], volumes=volumes, network_disabled=True
        )
        try:
            for path in ("/var/log/loginpod", "/shared"):
                stream, _ = helper.get_archive(path)
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                    archive.extractall(dest, filter="data")
        finally:
            helper.remove(force=True)
        return PodFiles(dest)

    def wait_delivered(self, agent: str, expected: int, *, timeout: float = 30) -> PodFiles:
        """Wait until the `expected` events of `agent` are in the source, in events/ and in xml/."""

        def delivered() -> PodFiles | None:
            files = self.files()
            try:
                counts = [len(files.source(agent)), len(files.events(agent)), len(files.xml(agent))]
            except (ValueError, SyntaxError):  # a line or document copied while being written: look again
                counts = [0]
            if min(counts) >= expected:
                return files
            shutil.rmtree(files.root)
            return None

        found: PodFiles = wait_for(delivered, timeout=timeout, interval=0.3, what=f"{expected} events of {agent}")
        return found
