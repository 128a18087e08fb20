"""The manifests and the podman pod as the k8s tests see them.

The pod is k8s/pod.yaml played by `podman kube play` through ops/kubeplay.py (what `make pod-up` runs),
under a name of its own and on a free host port, so a developer's `make pod-up` pod is never touched.
What the pod wrote is read with `podman exec` in a container that mounts the shared volume.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "k8s"
CONTAINERS = ("ambassador", "webserver", "login-sidecar", "adapter")
DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


def manifests() -> list[Path]:
    """Every manifest in k8s/, its sub-folders included."""
    return sorted(K8S.rglob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def load(path: Path) -> dict[str, Any]:
    (document,) = documents(path)
    return document


def load_module(path: Path) -> ModuleType:
    """A script of the repository (k8s/derive.py, ops/kubeplay.py) as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def venv_tool(name: str) -> str | None:
    """A command of our virtual environment (the one running the tests), else of the PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


class PodmanPod:
    """One pod played from k8s/pod.yaml; `up` waits until the ambassador is ready through the hostPort."""

    def __init__(self, name: str, host_port: int) -> None:
        self.name = name
        self.host_port = host_port
        self.url = f"http://127.0.0.1:{host_port}"

    def _kubeplay(self, *args: str) -> None:
        command = [sys.executable, str(REPO_ROOT / "ops" / "kubeplay.py"), *args, "--name", self.name]
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {done.stderr.strip()}\n{self.logs()}")

    def up(self) -> None:
        self._kubeplay("up", "--host-port", str(self.host_port), "--wait", "120")

    def down(self) -> None:
        self._kubeplay("down")

    def container(self, name: str) -> str:
        return f"{self.name}-{name}"

    def exec(self, container: str, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", "exec", self.container(container), *command],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def python(self, container: str, code: str) -> Any:
        """Run `code` with the container's Python; it prints one JSON value, returned here."""
        done = self.exec(container, "python", "-c", code)
        if done.returncode != 0:
            raise AssertionError(f"python in {container} failed: {done.stderr.strip()}")
        return json.loads(done.stdout)

    def state(self, container: str) -> tuple[str, int]:
        """The container's status (running, exited, ...) and how often podman restarted it."""
        done = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Status}} {{.RestartCount}}", self.container(container)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        status, restarts = done.stdout.split()
        return status, int(restarts)

    def stop(self, timeout_s: int = 30) -> dict[str, int]:
        """`podman pod stop`: SIGTERM to every container, SIGKILL after `timeout_s`; their exit codes."""
        subprocess.run(
            ["podman", "pod", "stop", "--time", str(timeout_s), self.name],
            capture_output=True,
            check=True,
            timeout=timeout_s + 60,
        )
        codes = {}
        for name in CONTAINERS:
            done = subprocess.run(
                ["podman", "inspect", "--format", "{{.State.ExitCode}}", self.container(name)],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            codes[name] = int(done.stdout)
        return codes

    def volume_path(self, volume: str) -> Path:
        """Where podman keeps the pod's volume on the host (it outlives a stopped pod)."""
        done = subprocess.run(
            ["podman", "volume", "inspect", "--format", "{{.Mountpoint}}", f"{self.name}-{volume}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return Path(done.stdout.strip())

    def kill(self, container: str) -> None:
        """SIGKILL to the container's main process, as the OOM killer would send it. Not `podman kill`:
        podman takes that for a stop by the user and then does not apply the restart policy."""
        done = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Pid}}", self.container(container)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        os.kill(int(done.stdout), signal.SIGKILL)

    def shared_files(self) -> dict[str, str] | None:
        """{path: text} of /shared/events/*.jsonl and /shared/xml/*.xml, read in whichever container of the
        two that mount /shared is running (None if neither answered, say while both restart)."""
        code = (
            "import glob, json, pathlib; "
            "print(json.dumps({p: pathlib.Path(p).read_text(encoding='utf-8') "
            "for p in sorted(glob.glob('/shared/events/*.jsonl') + glob.glob('/shared/xml/*.xml'))}))"
        )
        for container in ("adapter", "login-sidecar"):
            done = self.exec(container, "python", "-c", code)
            if done.returncode == 0:
                return dict(json.loads(done.stdout))
        return None

    def logs(self) -> str:
        parts = []
        for name in CONTAINERS:
            done = subprocess.run(
                ["podman", "logs", "--tail", "20", self.container(name)],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            parts.append(f"--- {name} ---\n{done.stdout}{done.stderr}")
        return "\n".join(parts)
