"""A login flood of many times the hashing capacity, from many clients: do the probes and a normal user get through?

In a pod of its own (the defaults, argon2 included), with the clients behind a front proxy it trusts
(TRUSTED_PROXIES=127.0.0.0/8; podkit_testing.LoginFlood names each client in X-Forwarded-For) and the
ambassador's per-client limit lifted, as more addresses than one machine can run would make it:

1. hashing capacity: failed logins per second straight to the webserver from a few clients (no 503s);
2. the probes at rest: GET /healthz of the ambassador and of the webserver, one every PROBE_INTERVAL;
3. the flood: FLOOD_CLIENTS clients, each sending its next login as soon as the last is answered, through the
   ambassador; meanwhile the same probes, and a normal user (the demo user, from an address of its own)
   logging in every HONEST_INTERVAL, taking the first answer (no retry).

Figures: the flood's rate over the capacity, probe p50/p99/max at rest and during the flood, the normal
user's success rate, and how fast the 503s came.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
from podkit_testing import LoginFlood

from bench.pod import BenchPod
from bench.profile import Profile
from bench.system import percentile

# (flood seconds, flood clients, capacity seconds, rest seconds) per profile, kept here to leave Profile alone
SIZES = {"full": (20.0, 128, 5.0, 3.0), "smoke": (2.0, 8, 1.0, 0.5)}
PROBE_INTERVAL = 0.05
HONEST_INTERVAL = 0.5
HONEST_ADDRESS = "192.0.2.10"  # a documentation address, in X-Forwarded-For only
# The flood's clients would be other machines: here they share the pod's 2 cores, so they run at a lower CPU
# priority and take what the pod leaves (the flood is then what the pod can answer).
FLOOD_NICENESS = 10


def _stats(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values) if values else None,
    }


class _Probes:
    """GET /healthz on each URL in turn, every PROBE_INTERVAL, in a thread, until stopped."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.latencies: dict[str, list[float]] = {name: [] for name in urls}
        self.failures: dict[str, int] = dict.fromkeys(urls, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Probes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(PROBE_INTERVAL):
                for name, url in self.urls.items():
                    started = time.perf_counter()
                    try:
                        ok = client.get(url).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    if ok:
                        self.latencies[name].append((time.perf_counter() - started) * 1000)
                    else:
                        self.failures[name] += 1

    def figures(self) -> dict[str, Any]:
        return {name: {**_stats(values), "failures": self.failures[name]} for name, values in self.latencies.items()}


def _capacity(pod: BenchPod, seconds: float) -> float:
    """Failed logins per second the webserver verifies, straight to it, with a few clients (no queue overflow)."""
    with LoginFlood(f"{pod.web_url}/login", 4) as flood:
        time.sleep(0.5)  # warm up
        start, begun = flood.statuses.get(401, 0), time.monotonic()
        time.sleep(seconds)
        verified = flood.statuses.get(401, 0) - start
        elapsed = time.monotonic() - begun
    return verified / elapsed


def _honest(url: str, stop: threading.Event, attempts: list[tuple[int, float]]) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.wait(HONEST_INTERVAL):
            started = time.perf_counter()
            try:
                status = client.post(
                    url,
                    json={"username": "demo", "password": "demo-password"},
                    headers={"x-forwarded-for": HONEST_ADDRESS},
                ).status_code
            except httpx.HTTPError:
                status = 0
            attempts.append((status, (time.perf_counter() - started) * 1000))


def measure(users_path: Path, work: Path, profile: Profile, pod_env: dict[str, str]) -> dict[str, Any]:
    flood_s, clients, capacity_s, rest_s = SIZES.get(profile.name, SIZES["smoke"])
    env = {**pod_env, "USERS_FILE": str(users_path), "TRUSTED_PROXIES": "127.0.0.0/8"}
    with BenchPod(work / "overload" / ".run", env) as pod:
        probes = {"ambassador": f"{pod.ambassador_url}/healthz", "webserver": f"{pod.web_url}/healthz"}
        capacity = _capacity(pod, capacity_s)
        with _Probes(probes) as rest:
            time.sleep(rest_s)
        honest: list[tuple[int, float]] = []
        stop = threading.Event()
        flood_at = LoginFlood(f"{pod.ambassador_url}/login", clients, niceness=FLOOD_NICENESS)
        with flood_at as flood, _Probes(probes) as during:
            person = threading.Thread(target=_honest, args=(f"{pod.ambassador_url}/login", stop, honest))
            person.start()
            begun = time.monotonic()
            time.sleep(flood_s)
            stop.set()
            person.join(timeout=60)
            elapsed = time.monotonic() - begun
        answered = flood.answered
        statuses = {str(status): count for status, count in sorted(flood.statuses.items())}
        overload_ms = list(flood.overload_ms)
    successes = [ms for status, ms in honest if status == 200]
    rate = answered / elapsed
    return {
        "flood_clients": clients,
        "flood_seconds": round(elapsed, 1),
        "hashing_capacity_per_s": round(capacity, 1),
        "flood_attempts_per_s": round(rate, 1),
        "flood_over_capacity": round(rate / capacity, 1) if capacity else None,
        "flood_statuses": statuses,
        "overloaded_503": _stats(overload_ms),
        "retry_after_missing": flood.retry_after_missing,
        "probes_at_rest": rest.figures(),
        "probes_during_flood": during.figures(),
        "honest": {
            "attempts": len(honest),
            "successes": len(successes),
            "success_rate": round(len(successes) / len(honest), 3) if honest else None,
            "statuses": sorted({status for status, _ in honest}),
            "success_latency": _stats(successes),
        },
    }
