"""The ambassador's settings: read once from the environment at start-up, then frozen."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from podkit.config import ConfigError, Env
from podkit.sharedstore import StoreSettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)  # no slots: the class attributes are the defaults from_env reads
class Settings:
    host: str = "0.0.0.0"
    port: int = 80
    upstream_url: str = "http://127.0.0.1:8080"
    connect_timeout: float = 2.0
    read_timeout: float = 30.0
    max_body_bytes: int = 1_048_576
    max_header_bytes: int = 16_384
    # The request target at most (414 beyond): nginx's limit too (a request line must fit in 8 KiB).
    max_url_bytes: int = 8_192
    # Slowloris: a request head must arrive within this many seconds, a body must not stall longer between
    # reads (nginx: client_header_timeout, client_body_timeout, 60 s each). Shorter here: one process holds
    # every connection, an honest client sends a login's head and body in well under a second, and uvicorn
    # closes idle keep-alive connections after 5 s anyway.
    client_header_timeout: float = 10.0
    client_body_timeout: float = 30.0
    upstream_max_connections: int = 100
    # Peers whose X-Forwarded-* headers we keep and extend; everyone else's are replaced.
    trusted_proxies: tuple[Network, ...] = ()
    login_rate_per_minute: float = 30.0
    login_burst: int = 10
    login_paths: tuple[str, ...] = ("/login",)
    # Clients tracked by the login rate limiter at most (the least recently seen are forgotten first).
    login_max_clients: int = 100_000
    access_log: bool = True
    log_level: str = "INFO"
    # REDIS_URL: the login rate-limit buckets in Redis, shared by every replica (ambassador.sharedlimit).
    shared_store: StoreSettings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = Env(environ)
        upstream_url = env.url("UPSTREAM_URL", cls.upstream_url)
        if not upstream_url.startswith("http://"):
            raise ConfigError(
                "UPSTREAM_URL", f"must be a plain http:// URL (the upstream is in the pod), got {upstream_url!r}"
            )
        return cls(
            host=env.str("AMBASSADOR_HOST", cls.host),
            port=env.port("AMBASSADOR_PORT", cls.port),
            upstream_url=upstream_url.rstrip("/"),
            connect_timeout=env.float("CONNECT_TIMEOUT", cls.connect_timeout, minimum=0.001),
            read_timeout=env.float("READ_TIMEOUT", cls.read_timeout, minimum=0.001),
            max_body_bytes=env.int("MAX_BODY_BYTES", cls.max_body_bytes, minimum=0),
            max_header_bytes=env.int("MAX_HEADER_BYTES", cls.max_header_bytes, minimum=256),
            max_url_bytes=env.int("MAX_URL_BYTES", cls.max_url_bytes, minimum=256),
            client_header_timeout=env.float("CLIENT_HEADER_TIMEOUT", cls.client_header_timeout, minimum=0.001),
            client_body_timeout=env.float("CLIENT_BODY_TIMEOUT", cls.client_body_timeout, minimum=0.001),
            upstream_max_connections=env.int("UPSTREAM_MAX_CONNECTIONS", cls.upstream_max_connections, minimum=1),
            trusted_proxies=env.networks("TRUSTED_PROXIES", ""),
            login_rate_per_minute=env.float("LOGIN_RATE_PER_MINUTE", cls.login_rate_per_minute, minimum=0.001),
            login_burst=env.int("LOGIN_BURST", cls.login_burst, minimum=1),
            login_paths=_paths(env.str("LOGIN_PATHS", ",".join(cls.login_paths))),
            login_max_clients=env.int("LOGIN_MAX_CLIENTS", cls.login_max_clients, minimum=1),
            access_log=env.bool("ACCESS_LOG", cls.access_log),
            log_level=env.log_level("LOG_LEVEL", cls.log_level),
            shared_store=StoreSettings.from_env(environ),
        )


def _paths(value: str) -> tuple[str, ...]:
    paths = tuple(part.strip() for part in value.split(",") if part.strip())
    for path in paths:
        if not path.startswith("/"):
            raise ConfigError("LOGIN_PATHS", f"each path must start with '/', got {path!r}")
    return paths
