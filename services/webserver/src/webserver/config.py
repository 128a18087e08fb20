"""The webserver's settings, read once from the environment (defaults and meaning: the README's "Configuration",
"webserver" table; ARGON2_* is read by the users CLI too)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from podkit.config import ConfigError, Env
from podkit.sharedstore import StoreSettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Loopback is always trusted: the ambassador reaches the webserver over localhost inside the pod.
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
SESSION_KEY_MIN_BYTES = 32


@dataclass(frozen=True)
class Argon2Params:
    """argon2id cost parameters; the defaults are OWASP's second recommended set (19 MiB, t=2, p=1)."""

    time_cost: int = 2
    memory_kib: int = 19456
    parallelism: int = 1
    concurrency: int = 0  # verifies at once; 0: one per usable CPU (cgroup quota included)
    max_waiting: int = 16  # verifies waiting for a slot; past it a login is refused with 503 (overloaded)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Argon2Params:
        env = Env(environ)
        parallelism = env.int("ARGON2_PARALLELISM", cls.parallelism, minimum=1, maximum=255)
        memory = env.int("ARGON2_MEMORY_KIB", cls.memory_kib, minimum=8, maximum=4 * 1024 * 1024)
        if memory < 8 * parallelism:
            raise ConfigError("ARGON2_MEMORY_KIB", f"must be at least 8 x ARGON2_PARALLELISM ({8 * parallelism})")
        return cls(
            time_cost=env.int("ARGON2_TIME_COST", cls.time_cost, minimum=1, maximum=100),
            memory_kib=memory,
            parallelism=parallelism,
            concurrency=env.int("ARGON2_CONCURRENCY", 0, minimum=0, maximum=1024),
            max_waiting=env.int("ARGON2_MAX_WAITING", cls.max_waiting, minimum=0, maximum=100_000),
        )


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    users_file: Path
    events_file: Path
    session_key: bytes = field(repr=False)
    pod_name: str
    argon2: Argon2Params
    session_ttl_seconds: int
    trusted_proxies: tuple[Network, ...]
    lockout_threshold: int
    lockout_window_seconds: int
    lockout_seconds: int
    events_file_max_bytes: int
    events_file_keep: int
    events_file_keep_max: int
    sidecar_tail_checkpoint: Path | None
    max_body_bytes: int
    log_level: str
    shared_store: StoreSettings | None = None  # REDIS_URL: revocations and lockout shared by all replicas

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = Env(environ)
        pod_name = env.str("POD_NAME", socket.gethostname())
        if len(pod_name) > 253:
            raise ConfigError("POD_NAME", f"must be at most 253 characters, got {len(pod_name)}")
        log_level = env.log_level()
        keep = env.int("EVENTS_FILE_KEEP", 2, minimum=1, maximum=100)
        keep_max = env.int("EVENTS_FILE_KEEP_MAX", max(keep, 8), minimum=1, maximum=1000)
        checkpoint = env.optional_str("SIDECAR_TAIL_CHECKPOINT")
        if keep_max < keep:
            raise ConfigError("EVENTS_FILE_KEEP_MAX", f"must be at least EVENTS_FILE_KEEP ({keep}), got {keep_max}")
        return cls(
            host=env.str("WEB_HOST", "127.0.0.1"),
            port=env.port("WEB_PORT", 8080),
            users_file=env.path("USERS_FILE", "/etc/loginpod/users/users.txt"),
            events_file=env.path("EVENTS_FILE", "/var/log/loginpod/events.jsonl"),
            session_key=env.secret("SESSION_KEY", min_bytes=SESSION_KEY_MIN_BYTES),
            pod_name=pod_name,
            argon2=Argon2Params.from_env(environ),
            session_ttl_seconds=env.int("SESSION_TTL_SECONDS", 3600, minimum=60, maximum=7 * 24 * 3600),
            trusted_proxies=LOOPBACK + env.networks("TRUSTED_PROXIES", ""),
            lockout_threshold=env.int("LOCKOUT_THRESHOLD", 5, minimum=1, maximum=1000),
            lockout_window_seconds=env.int("LOCKOUT_WINDOW_SECONDS", 900, minimum=1),
            lockout_seconds=env.int("LOCKOUT_SECONDS", 900, minimum=1),
            events_file_max_bytes=env.int("EVENTS_FILE_MAX_BYTES", 64 * 1024 * 1024, minimum=1024),
            events_file_keep=keep,
            events_file_keep_max=keep_max,
            sidecar_tail_checkpoint=None if checkpoint is None else Path(checkpoint),
            max_body_bytes=env.int("MAX_BODY_BYTES", 65536, minimum=1024, maximum=16 * 1024 * 1024),
            log_level=log_level,
            shared_store=StoreSettings.from_env(environ),
        )
