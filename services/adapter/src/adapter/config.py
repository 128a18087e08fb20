"""The adapter's settings, read once from the environment (defaults and meaning: the README's "Configuration"
tables; the paths under SHARED_DIR: podkit.volume)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from podkit.config import Env


@dataclass(frozen=True)
class Settings:
    shared_dir: Path
    metrics_host: str
    metrics_port: int
    batch_max_events: int
    rescan_interval: float  # seconds; a fallback scan in case a filesystem event is missed
    retention_bytes: int  # 0: keep every document
    sink_url: str | None
    sink_timeout: float
    sink_max_backoff: float
    shutdown_grace: float
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = Env(environ)
        return cls(
            shared_dir=env.path("SHARED_DIR", "/shared"),
            metrics_host=env.str("METRICS_HOST", "0.0.0.0"),
            metrics_port=env.port("METRICS_PORT", 9102),
            batch_max_events=env.int("XML_BATCH_MAX_EVENTS", 1000, minimum=1, maximum=100_000),
            rescan_interval=env.int("RESCAN_INTERVAL_MS", 1000, minimum=10, maximum=3_600_000) / 1000,
            retention_bytes=env.int("XML_RETENTION_BYTES", 256 * 1024 * 1024, minimum=0),
            sink_url=env.optional_url("XML_SINK_URL"),
            sink_timeout=env.float("XML_SINK_TIMEOUT", 10.0, minimum=0.1),
            sink_max_backoff=env.float("XML_SINK_MAX_BACKOFF", 30.0, minimum=0.1),
            shutdown_grace=env.float("SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0),
            log_level=env.log_level(),
        )
