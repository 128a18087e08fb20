"""Token buckets per client for the login endpoint, in bounded memory.

A bucket holds up to `burst` tokens and refills at `rate_per_minute`; a login attempt takes one. Buckets
live in a dict kept in least-recently-used order: a bucket idle long enough to be full again is the same
as no bucket, so those are dropped from the old end on every call, and past `max_clients` the least
recently seen client is forgotten (it gets a full bucket back: the cap trades precision for memory).

With REDIS_URL set, ambassador.sharedlimit's `SharedRateLimiter` keeps the buckets in Redis instead, so all
replicas draw on one bucket per client. The app only calls `take` (the `RateLimiter` protocol).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol


class RateLimiter(Protocol):
    async def take(self, client: str) -> float:
        """Takes a token for `client`: 0.0 if allowed, else the seconds until a token is available."""
        ...

    async def aclose(self) -> None: ...


class LoginRateLimiter:
    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._refill_seconds = self.burst / self.rate
        # client -> (tokens, time of the last update); insertion order = least recently used first
        self._buckets: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, client: str) -> float:
        """Takes a token for `client`: 0.0 if allowed, else the seconds until a token is available."""
        now = self._clock()
        buckets = self._buckets
        self._evict_idle(now)
        state = buckets.pop(client, None)
        tokens = self.burst if state is None else min(self.burst, state[0] + (now - state[1]) * self.rate)
        if tokens >= 1.0:
            buckets[client] = (tokens - 1.0, now)
            wait = 0.0
        else:
            buckets[client] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(buckets) > self.max_clients:
            del buckets[next(iter(buckets))]
        return wait

    async def take(self, client: str) -> float:
        return self.acquire(client)

    async def aclose(self) -> None:
        """Nothing to release: the buckets are in memory."""

    def _evict_idle(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets))
            if now - buckets[oldest][1] < self._refill_seconds:
                return
            del buckets[oldest]


def retry_after(wait: float) -> bytes:
    """A Retry-After value: whole seconds, rounded up, at least 1."""
    return b"%d" % max(1, math.ceil(wait))
