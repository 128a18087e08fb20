"""The pod in local mode (`python -m localpod`) on free ports, in a run directory of the benchmark's own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.system import REPO_ROOT, free_port, wait_for

SERVICES = ("webserver", "ambassador", "login-sidecar", "adapter")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class BenchPod:
    """`with BenchPod(run_dir, env) as pod:` the four services, ready, until the block ends (then Ctrl-C)."""

    def __init__(self, run_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.run_dir = run_dir
        self.ambassador_port = free_port()
        self.web_port = free_port()
        self.env = {
            **os.environ,
            "LOCALPOD_DIR": str(run_dir),
            "AMBASSADOR_PORT": str(self.ambassador_port),
            "WEB_PORT": str(self.web_port),
            "SIDECAR_METRICS_PORT": str(free_port()),
            "ADAPTER_METRICS_PORT": str(free_port()),
            "LOCALPOD_GRACE_SECONDS": "20",
            **(extra_env or {}),
        }
        self.log_path = run_dir.parent / "localpod.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def ambassador_url(self) -> str:
        return f"http://127.0.0.1:{self.ambassador_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def shared(self) -> Path:
        return self.run_dir / "shared"

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.run_dir / "localpod.json").read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def pids(self) -> dict[str, int | None]:
        containers = self.status().get("containers", {})
        return {name: containers.get(name, {}).get("pid") for name in SERVICES}

    def restarts(self) -> dict[str, int]:
        containers = self.status().get("containers", {})
        return {name: int(containers.get(name, {}).get("restarts", 0)) for name in SERVICES}

    def __enter__(self) -> BenchPod:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "localpod"], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
            )
        try:
            wait_for(lambda: self.status().get("ready") or self._exited(), timeout=90, what="the local pod to be ready")
            if self._exited():
                raise RuntimeError(f"localpod exited: {self.logs()[-3000:]}")
            wait_for(lambda: http_ok(f"{self.ambassador_url}/readyz"), timeout=60, what="ambassador /readyz")
            wait_for(lambda: http_ok(f"{self.web_url}/readyz"), timeout=60, what="webserver /readyz")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _exited(self) -> bool:
        return self._process is None or self._process.poll() is not None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGINT)  # what Ctrl-C does: the supervisor stops the pod in order
        try:
            self._process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
