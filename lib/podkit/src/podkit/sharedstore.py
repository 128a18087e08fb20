"""The Redis connection the replicas share their security state through (REDIS_URL), and its outage rule.

Used by the webserver (revoked sessions, lockout) and the ambassador (rate-limit buckets); only those two
depend on the `redis` package, so the other images never import this module. Every key starts with one
prefix (REDIS_KEY_PREFIX, `loginpod:` by default): pods of one deployment share their keys, and another
deployment on the same Redis picks another prefix.

A Redis that is down must never turn into a 500 nor stall every request for a timeout: `SharedStore.run`
turns every Redis or socket failure into `StoreUnavailable`, logs one error line when an outage begins
(and one info line when it ends), and for `retry_interval` seconds after a failure answers
`StoreUnavailable` at once without trying. Each caller decides what an outage means for its use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.exceptions import RedisError

from podkit.config import ConfigError, Env

log = logging.getLogger("podkit.sharedstore")

T = TypeVar("T")
DEFAULT_PREFIX = "loginpod:"


class StoreUnavailable(Exception):
    """Redis could not answer (down, unreachable, too slow, or failing): the caller applies its outage rule."""


@dataclass(frozen=True)
class StoreSettings:
    url: str = field(repr=False)  # may hold a password
    key_prefix: str = DEFAULT_PREFIX
    timeout: float = 0.5  # seconds, to connect and for each command
    retry_interval: float = 1.0  # after a failure, seconds of failing fast before trying Redis again
    password: str | None = field(default=None, repr=False)  # REDIS_PASSWORD(_FILE): kept out of the URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StoreSettings | None:
        """None when REDIS_URL is unset (each pod keeps its state in memory)."""
        env = Env(environ)
        url = env.raw("REDIS_URL")
        if url is None:
            return None
        try:
            parts = urlsplit(url)
            parse_url(url)  # type: ignore[no-untyped-call] # what redis' from_url will do with it: a bad port or bracket fails here, not later
        except ValueError as exc:
            raise ConfigError("REDIS_URL", f"is not a valid Redis URL: {exc}") from None
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            raise ConfigError("REDIS_URL", f"must be a redis://, rediss:// or unix:// URL, got {redact(url)!r}")
        prefix = env.str("REDIS_KEY_PREFIX", DEFAULT_PREFIX)
        if not prefix or len(prefix) > 64 or not prefix.isascii() or not prefix.isprintable() or " " in prefix:
            raise ConfigError("REDIS_KEY_PREFIX", "must be 1 to 64 printable ASCII characters without spaces")
        password = None
        if env.raw("REDIS_PASSWORD") is not None or env.raw("REDIS_PASSWORD_FILE") is not None:
            password = env.secret("REDIS_PASSWORD", min_bytes=1).decode("utf-8", "strict")
        return cls(
            url=url,
            password=password,
            key_prefix=prefix,
            timeout=env.float("REDIS_TIMEOUT", cls.timeout, minimum=0.01, maximum=60),
            retry_interval=env.float("REDIS_RETRY_INTERVAL", cls.retry_interval, minimum=0, maximum=300),
        )


def redact(url: str) -> str:
    """The URL without its password, fit for a log line."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host).geturl()


class SharedStore:
    """One Redis client and the outage bookkeeping; `failures` counts failed operations by use (metrics)."""

    def __init__(self, settings: StoreSettings, service: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.service = service
        self.prefix = settings.key_prefix
        # One immediate retry: a pooled connection that died with a restarted Redis is replaced, not failed.
        self.client = aioredis.Redis.from_url(
            settings.url,
            socket_timeout=settings.timeout,
            socket_connect_timeout=settings.timeout,
            retry=Retry(NoBackoff(), 1),
            decode_responses=False,
            password=settings.password,
        )
        self.failures: dict[str, int] = {}
        self.down = False
        self._retry_at = 0.0
        self._clock = clock

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def run(self, use: str, operation: Callable[[], Awaitable[T]]) -> T:
        """The operation's result, or StoreUnavailable (logged once per outage, counted per use)."""
        if self.down and self._clock() < self._retry_at:
            self._count(use)
            raise StoreUnavailable(f"shared store down, retrying in {self._retry_at - self._clock():.1f} s")
        try:
            result = await operation()
        except (RedisError, OSError, TimeoutError) as exc:
            self._count(use)
            self._retry_at = self._clock() + self.settings.retry_interval
            if not self.down:
                self.down = True
                log.error(
                    "shared store (Redis) unavailable: each use applies its outage rule until it is back",
                    extra={"redis": redact(self.settings.url), "use": use, "error": f"{type(exc).__name__}: {exc}"},
                )
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if self.down:
            self.down = False
            log.info("shared store (Redis) available again", extra={"redis": redact(self.settings.url)})
        return result

    def _count(self, use: str) -> None:
        self.failures[use] = self.failures.get(use, 0) + 1

    async def aclose(self) -> None:
        await self.client.aclose()


class StoreCollector(Collector):
    """Prometheus metrics of a SharedStore: `<prefix>shared_store_errors_total{use}` and `<prefix>shared_store_up`."""

    def __init__(self, store: SharedStore, prefix: str) -> None:
        self._store = store
        self._prefix = prefix

    def collect(self) -> Iterator[Metric]:
        errors = CounterMetricFamily(
            self._prefix + "shared_store_errors",
            "Operations on the shared store (Redis) that failed, by use; each applied its outage rule.",
            labels=("use",),
        )
        for use, count in sorted(self._store.failures.items()):
            errors.add_metric((use,), count)
        yield errors
        yield GaugeMetricFamily(
            self._prefix + "shared_store_up",
            "1 while the last operation on the shared store (Redis) succeeded.",
            value=0 if self._store.down else 1,
        )
