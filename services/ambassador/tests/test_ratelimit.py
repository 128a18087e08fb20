"""The login rate limiter: token buckets per client, bounded memory."""

from __future__ import annotations

import pytest
from ambassador.ratelimit import LoginRateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, rate: float = 30, burst: int = 3, max_clients: int = 100) -> LoginRateLimiter:
    return LoginRateLimiter(rate, burst, max_clients, clock=clock)


def test_burst_then_refused_with_the_wait_until_the_next_token() -> None:
    clock = Clock()
    bucket = limiter(clock)  # 30 per minute: one token every 2 s
    assert [bucket.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire("a") == pytest.approx(2.0)
    clock.now += 1.5
    assert bucket.acquire("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.acquire("a") == 0.0
    assert bucket.acquire("a") == pytest.approx(2.0)


def test_clients_have_their_own_buckets() -> None:
    clock = Clock()
    bucket = limiter(clock, burst=1)
    assert bucket.acquire("a") == 0.0
    assert bucket.acquire("a") > 0
    assert bucket.acquire("b") == 0.0


def test_refill_stops_at_the_burst() -> None:
    clock = Clock()
    bucket = limiter(clock, burst=2)
    bucket.acquire("a")
    clock.now += 3600
    assert [bucket.acquire("a") for _ in range(2)] == [0.0, 0.0]
    assert bucket.acquire("a") > 0


def test_idle_buckets_are_evicted_once_full_again() -> None:
    clock = Clock()
    bucket = limiter(clock, burst=3)  # full again 6 s after the last use
    bucket.acquire("a")
    clock.now += 3
    bucket.acquire("b")
    assert len(bucket) == 2
    clock.now += 3.5  # a: idle 6.5 s (full, forgotten); b: idle 3.5 s (kept)
    bucket.acquire("c")
    assert len(bucket) == 2
    assert bucket.acquire("b") == 0.0


def test_tracked_clients_are_capped_least_recently_seen_first() -> None:
    clock = Clock()
    bucket = limiter(clock, burst=1, max_clients=3)
    for client in ("a", "b", "c"):
        bucket.acquire(client)
    bucket.acquire("a")  # refused, but now the most recently seen
    bucket.acquire("d")  # evicts b
    assert len(bucket) == 3
    assert bucket.acquire("a") > 0  # still tracked
    assert bucket.acquire("b") == 0.0  # forgotten: a fresh bucket


def test_memory_stays_bounded_under_many_clients() -> None:
    clock = Clock()
    bucket = limiter(clock, max_clients=50)
    for n in range(10_000):
        bucket.acquire(f"10.0.{n // 256}.{n % 256}")
    assert len(bucket) == 50


@pytest.mark.parametrize(("wait", "header"), [(0.01, b"1"), (1.0, b"1"), (1.2, b"2"), (59.5, b"60")])
def test_retry_after_is_whole_seconds_rounded_up(wait: float, header: bytes) -> None:
    assert retry_after(wait) == header
