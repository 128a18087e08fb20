"""Per-username lockout after repeated failures (ASVS 2.2.1), counted for existing users only.

Attempts in flight count against the threshold, so a burst of parallel guesses cannot get more than
`threshold` of them checked. Unknown names are not tracked: they have no account to protect, and tracking
them would let a name spray grow memory without bound.

`Lockout` keeps the counts in this process's memory; with REDIS_URL set, webserver.sharedstate's
`SharedLockout` keeps them in Redis, shared by every replica. Both have the `LockoutPolicy` methods.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    locked_until: float = 0.0


class LockoutPolicy(Protocol):
    """The lockout's three calls; a shared one raises podkit.sharedstore.StoreUnavailable when it is down."""

    async def begin(self, username: str) -> bool: ...

    async def finish(self, username: str, *, success: bool) -> None: ...

    async def check_available(self) -> None: ...


class Lockout:
    def __init__(
        self, threshold: int, window_seconds: float, lockout_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.lockout_seconds = lockout_seconds
        self._clock = clock
        self._records: dict[str, _Record] = {}

    async def check_available(self) -> None:
        """Memory is always there (the shared store's version raises when Redis is down)."""

    async def begin(self, username: str) -> bool:
        """Start an attempt; False when the name is locked out (the attempt must then fail, reason locked_out)."""
        now = self._clock()
        record = self._records.setdefault(username, _Record())
        while record.failures and record.failures[0] <= now - self.window_seconds:
            record.failures.popleft()
        if record.locked_until > now or len(record.failures) + record.in_flight >= self.threshold:
            self._forget_if_idle(username, record, now)
            return False
        record.in_flight += 1
        return True

    async def finish(self, username: str, *, success: bool) -> None:
        """End an attempt started by a `begin` that returned True."""
        now = self._clock()
        record = self._records.setdefault(username, _Record())
        record.in_flight = max(0, record.in_flight - 1)
        if success:
            record.failures.clear()
        else:
            record.failures.append(now)
            if len(record.failures) >= self.threshold:
                record.locked_until = now + self.lockout_seconds
                record.failures.clear()
        self._forget_if_idle(username, record, now)

    def locked(self, username: str) -> bool:
        record = self._records.get(username)
        return record is not None and record.locked_until > self._clock()

    def _forget_if_idle(self, username: str, record: _Record, now: float) -> None:
        if not record.failures and not record.in_flight and record.locked_until <= now:
            self._records.pop(username, None)
