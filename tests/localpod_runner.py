"""Starts `python -m localpod` (the README's `make run`) on free ports in a temporary run directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from podkit.volume import Volume
from support import free_port, wait_for


class LocalPod:
    def __init__(self, run_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.run_dir = run_dir
        self.ambassador_port = free_port()
        self.env = {
            **os.environ,
            "LOCALPOD_DIR": str(run_dir),
            "AMBASSADOR_PORT": str(self.ambassador_port),
            "WEB_PORT": str(free_port()),
            "SIDECAR_METRICS_PORT": str(free_port()),
            "ADAPTER_METRICS_PORT": str(free_port()),
            "LOCALPOD_GRACE_SECONDS": "20",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = run_dir.parent / f"{run_dir.name}-localpod.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ambassador_port}"

    @property
    def volume(self) -> Volume:
        """The shared volume localpod gives the services (localpod.config.Settings.volume)."""
        return Volume(self.run_dir / "shared")

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.run_dir / "localpod.json").read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def pid(self, container: str) -> int | None:
        pid = self.status().get("containers", {}).get(container, {}).get("pid")
        return int(pid) if pid else None

    def start(self, timeout: float = 60) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localpod"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(
                lambda: self.status().get("ready") or self.process.poll() is not None, timeout=timeout, what="pod ready"
            )
            assert self.process.poll() is None, f"localpod exited: {self.log_path.read_text()[-4000:]}"
            wait_for(self._ambassador_ready, timeout=timeout, what="ambassador /readyz")
        except BaseException:
            self.stop()
            raise

    def _ambassador_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 60) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")
