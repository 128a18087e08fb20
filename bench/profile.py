"""How long and how big each measurement is: the full run (`make bench`) and the smoke run (its test)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Profile:
    name: str
    idle_seconds: float  # the pod idles this long before its RSS is read
    proxy_rounds: int  # each (target, connections) is run this many times, interleaved; the median counts
    proxy_seconds: float
    proxy_warmup_seconds: float
    proxy_connections: tuple[int, ...]
    login_rounds: int  # direct and ambassador alternate; the ratio is the median of the rounds' ratios
    login_seconds: float
    login_connections: int
    pipeline_max_in_flight: int  # past this many unanswered logins the schedule waits (no runaway queue)
    pipeline_rate: float  # logins per second, open loop
    pipeline_seconds: float
    pipeline_drain_seconds: float
    backfill_events: int
    backfill_timeout_seconds: float  # per service; past it the rate so far is reported as incomplete

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Profile(
    name="full",
    idle_seconds=5,
    proxy_rounds=3,
    proxy_seconds=6,
    proxy_warmup_seconds=1,
    proxy_connections=(1, 32),
    login_rounds=3,
    login_seconds=6,
    login_connections=4,
    pipeline_max_in_flight=8,
    pipeline_rate=50,
    pipeline_seconds=30,
    pipeline_drain_seconds=20,
    backfill_events=1_000_000,
    backfill_timeout_seconds=200,
)

SMOKE = Profile(
    name="smoke",
    idle_seconds=0.5,
    proxy_rounds=1,
    proxy_seconds=1,
    proxy_warmup_seconds=0,
    proxy_connections=(1, 32),
    login_rounds=1,
    login_seconds=1,
    login_connections=4,
    pipeline_max_in_flight=8,
    pipeline_rate=50,
    pipeline_seconds=1,
    pipeline_drain_seconds=20,
    backfill_events=2_000,
    backfill_timeout_seconds=30,
)

PROFILES = {profile.name: profile for profile in (FULL, SMOKE)}
