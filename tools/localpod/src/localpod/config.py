"""Local-mode settings: where the pod's volumes live and which ports stand in for the pod's (defaults: the
README's "local mode (`make run`)" table)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from podkit.config import Env
from podkit.volume import Volume

REPO_ROOT = Path(__file__).resolve().parents[4]


@dataclass(frozen=True)
class Settings:
    run_dir: Path
    users_file: Path
    ambassador_host: str
    ambassador_port: int
    web_port: int
    sidecar_metrics_port: int
    adapter_metrics_port: int
    grace_seconds: float
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        env = Env(environ)
        return cls(
            run_dir=env.path("LOCALPOD_DIR", str(REPO_ROOT / ".run")).resolve(),
            users_file=env.path("USERS_FILE", str(REPO_ROOT / "deploy" / "demo" / "users.txt")).resolve(),
            ambassador_host=env.str("AMBASSADOR_HOST", "127.0.0.1"),
            ambassador_port=env.port("AMBASSADOR_PORT", 8000),
            web_port=env.port("WEB_PORT", 8080),
            sidecar_metrics_port=env.port("SIDECAR_METRICS_PORT", 9101),
            adapter_metrics_port=env.port("ADAPTER_METRICS_PORT", 9102),
            grace_seconds=env.float("LOCALPOD_GRACE_SECONDS", 15.0, minimum=0.5),
            log_level=env.str("LOG_LEVEL", "INFO"),
        )

    @property
    def volume(self) -> Volume:
        """The pod's shared volume (its layout under the root: podkit.volume)."""
        return Volume(self.run_dir / "shared")

    @property
    def events_file(self) -> Path:
        return self.run_dir / "webserver" / "events.jsonl"

    @property
    def session_key_file(self) -> Path:
        return self.run_dir / "secrets" / "session-key"

    @property
    def status_file(self) -> Path:
        return self.run_dir / "localpod.json"
