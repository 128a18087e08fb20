"""Admission to the argon2 verifies under overload: a bounded queue that favours the quieter clients.

A verify costs tens of milliseconds of CPU, so a login flood must not queue without end (every waiting
request holds a connection, and its answer comes too late to matter) nor crowd out the normal user. At most
`slots` verifies run at once and at most `max_waiting` wait; past that a request is refused at once
(`Overloaded`: the caller answers 503 with Retry-After). Who waits is decided by how many attempts the client
made lately (a count decaying with a `half_life`): when the queue is full, a request from a quieter client
takes the place of the busiest waiting one, which is refused instead. A flood spread over many addresses
still sends many attempts from each, while a person tries a few times a minute, so the person gets in; an
attacker with more addresses than attempts per address is not told apart (docs: limits).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

MAX_CLIENTS: Final = 100_000  # decayed counts kept; past it the least recently seen client is forgotten


class Overloaded(Exception):
    """No verify slot and no room to wait for one: refuse the attempt now."""


@dataclass(order=True)
class _Waiter:
    score: float
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class VerifyAdmission:
    """Not thread-safe: used from the event loop only."""

    def __init__(self, slots: int, max_waiting: int, *, half_life: float = 30.0) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self._decay = math.log(2) / half_life
        self._running = 0
        self._waiting: list[_Waiter] = []  # sorted: the most deserving first
        self._seq = itertools.count()
        self._scores: dict[str, tuple[float, float]] = {}  # client -> (count, when)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return self._running

    @asynccontextmanager
    async def slot(self, client: str) -> AsyncIterator[None]:
        """Hold one verify slot for the block; raises Overloaded before the block when there is no room."""
        await self._acquire(client)
        try:
            yield
        finally:
            self._release()

    def _score(self, client: str) -> float:
        """The client's recent attempts, this one included (each counts 1, halving every half_life)."""
        now = time.monotonic()
        count, when = self._scores.pop(client, (0.0, now))  # re-inserted last: the dict is in order of attempts
        self._scores[client] = (count * math.exp(-self._decay * (now - when)) + 1.0, now)
        if len(self._scores) > MAX_CLIENTS:
            del self._scores[next(iter(self._scores))]  # the least recently seen: its count has decayed the most
        return self._scores[client][0]

    async def _acquire(self, client: str) -> None:
        score = self._score(client)
        if self._running < self.slots and not self._waiting:
            self._running += 1
            return
        if len(self._waiting) >= self.max_waiting:
            if not self._waiting or self._waiting[-1].score <= score:
                raise Overloaded
            evicted = self._waiting.pop()  # the busiest client waiting gives its place up
            evicted.future.set_exception(Overloaded())
        waiter = _Waiter(score, next(self._seq), asyncio.get_running_loop().create_future())
        bisect.insort(self._waiting, waiter)
        try:
            await waiter.future  # resolved by _release with the slot handed over
        except asyncio.CancelledError:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
                self._release()  # the slot was handed to us as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiting:
            waiter = self._waiting.pop(0)
            if not waiter.future.done():
                waiter.future.set_result(None)  # the slot passes on: `_running` stays
                return
        self._running -= 1
