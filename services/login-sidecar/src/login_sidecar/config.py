"""The sidecar's settings, read once from the environment (defaults and meaning: the README's "Configuration"
tables; the paths under SHARED_DIR: podkit.volume)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from podkit.config import ConfigError, Env
from podkit.volume import SIDECAR, Volume

from login_sidecar.syslog import check_sink_url

SERVICE = SIDECAR


@dataclass(frozen=True)
class Settings:
    source_file: Path
    shared_dir: Path
    metrics_host: str
    metrics_port: int
    poll_interval: float  # seconds between stat polls of the source: the fallback to the file watcher
    segment_max_bytes: int
    max_line_bytes: int
    sink_url: str | None  # None: no shipping; http(s):// NDJSON, or relp://, syslog+tls://, syslog+tcp://
    sink_batch_max_events: int
    sink_batch_max_bytes: int
    sink_flush_interval: float  # seconds a partial batch may wait for more events
    sink_timeout: float
    sink_max_backoff: float
    shutdown_grace: float
    log_level: str
    # syslog sinks (login_sidecar.sinks): TLS for syslog+tls://, HOSTNAME for events that name no pod
    sink_tls_ca_file: Path | None = None
    sink_tls_cert_file: Path | None = None
    sink_tls_key_file: Path | None = None
    sink_syslog_hostname: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = Env(environ)
        sink_url = env.raw("SINK_URL")
        settings = cls(
            source_file=env.path("SOURCE_FILE", "/var/log/loginpod/events.jsonl"),
            shared_dir=env.path("SHARED_DIR", "/shared"),
            metrics_host=env.str("METRICS_HOST", "0.0.0.0"),
            metrics_port=env.port("METRICS_PORT", 9101),
            poll_interval=env.int("POLL_INTERVAL_MS", 250, minimum=1, maximum=60_000) / 1000,
            segment_max_bytes=env.int("SEGMENT_MAX_BYTES", 64 << 20, minimum=1024, maximum=1 << 40),
            max_line_bytes=env.int("MAX_LINE_BYTES", 1 << 20, minimum=256, maximum=64 << 20),
            sink_url=None if sink_url is None else check_sink_url("SINK_URL", sink_url),
            sink_batch_max_events=env.int("SINK_BATCH_MAX_EVENTS", 500, minimum=1, maximum=1_000_000),
            sink_batch_max_bytes=env.int("SINK_BATCH_MAX_BYTES", 1 << 20, minimum=1024, maximum=1 << 30),
            sink_flush_interval=env.int("SINK_FLUSH_INTERVAL_MS", 1000, minimum=1, maximum=3_600_000) / 1000,
            sink_timeout=env.float("SINK_TIMEOUT", 10.0, minimum=0.1, maximum=3600),
            sink_max_backoff=env.float("SINK_MAX_BACKOFF", 30.0, minimum=0.01, maximum=3600),
            shutdown_grace=env.float("SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0, maximum=3600),
            log_level=env.log_level(),
            sink_tls_ca_file=_optional_path(env, "SINK_TLS_CA_FILE"),
            sink_tls_cert_file=_optional_path(env, "SINK_TLS_CERT_FILE"),
            sink_tls_key_file=_optional_path(env, "SINK_TLS_KEY_FILE"),
            sink_syslog_hostname=env.raw("POD_NAME"),
        )
        if settings.sink_url is not None and settings.sink_url.startswith("syslog+tls://"):
            tls_context(settings)  # its files read now: a bad one is a config error at start-up, not a crash later
        return settings

    @property
    def volume(self) -> Volume:
        return Volume(self.shared_dir)

    @property
    def events_dir(self) -> Path:
        return self.volume.events_dir

    @property
    def state_dir(self) -> Path:
        return self.volume.state_dir(SERVICE)

    @property
    def tail_checkpoint(self) -> Path:
        return self.volume.tail_checkpoint

    @property
    def ship_checkpoint(self) -> Path:
        return self.volume.checkpoint(SERVICE, "ship")

    @property
    def deadletter_file(self) -> Path:
        return self.volume.deadletter(SERVICE)


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Verifies the receiver (against SINK_TLS_CA_FILE, or the system's CAs); a client certificate if given.
    Raises ConfigError naming the variable whose file cannot be read or used."""
    if settings.sink_tls_key_file is not None and settings.sink_tls_cert_file is None:
        raise ConfigError("SINK_TLS_KEY_FILE", "needs SINK_TLS_CERT_FILE (the certificate of that key)")
    ca = settings.sink_tls_ca_file
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("SINK_TLS_CA_FILE", f"cannot be used: {exc}") from None
    if settings.sink_tls_cert_file is not None:
        key = str(settings.sink_tls_key_file) if settings.sink_tls_key_file else None
        try:
            context.load_cert_chain(str(settings.sink_tls_cert_file), key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("SINK_TLS_CERT_FILE", f"cannot be used with its key: {exc}") from None
    return context


def _optional_path(env: Env, name: str) -> Path | None:
    value = env.raw(name)
    return None if value is None else Path(value)
