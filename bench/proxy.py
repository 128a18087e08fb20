"""Proxy overhead: one cheap webserver endpoint, direct vs through the ambassador vs through nginx.

The runs are interleaved (every round visits every target at every connection count, in a rotated order)
so that noise from other work on the machine falls on all three alike; each figure is the median round.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench import wrk
from bench.nginx import NginxProxy
from bench.pod import BenchPod, http_ok
from bench.profile import Profile

TARGETS = ("direct", "ambassador", "nginx")


def measure(pod: BenchPod, path: str, profile: Profile) -> dict[str, Any]:
    with NginxProxy(pod.web_port) as nginx:
        bases = {"direct": pod.web_url, "ambassador": pod.ambassador_url, "nginx": nginx.url}
        runs = interleaved(
            bases,
            path,
            profile.proxy_connections,
            profile.proxy_rounds,
            profile.proxy_seconds,
            profile.proxy_warmup_seconds,
        )
    return {
        "endpoint": f"GET {path}",
        "rounds": profile.proxy_rounds,
        "seconds_per_run": profile.proxy_seconds,
        "tool": "wrk -t1 (one thread), keep-alive connections",
        "runs": runs,
        **_derived(runs, profile.proxy_connections),
    }


def interleaved(
    bases: dict[str, str], path: str, connections: tuple[int, ...], rounds: int, seconds: float, warmup: float
) -> dict[str, dict[str, Any]]:
    """wrk against `path` of each base URL at each connection count, `rounds` times in a rotated order:
    runs[target][connections] is the median round, with every round's rate and p50."""
    targets = tuple(bases)
    for target, base in bases.items():
        if not http_ok(base + path):
            raise RuntimeError(f"GET {path} via {target} does not answer 200")
    results: dict[str, dict[int, list[wrk.WrkResult]]] = {t: {c: [] for c in connections} for t in targets}
    for index in range(rounds):
        shift = index % len(targets)
        order = targets[shift:] + targets[:shift]
        for count in connections:
            for target in order:
                url = bases[target] + path
                if warmup:
                    wrk.run(url, target=target, connections=count, seconds=warmup)
                results[target][count].append(wrk.run(url, target=target, connections=count, seconds=seconds))
    runs: dict[str, dict[str, Any]] = {}
    for target, by_connections in results.items():
        runs[target] = {}
        for count, measured in by_connections.items():
            ordered = sorted(measured, key=lambda r: r.rps)
            median = ordered[len(ordered) // 2]
            runs[target][str(count)] = {
                **median.as_dict(),
                "rounds_rps": [r.rps for r in measured],
                "rounds_p50_ms": [r.latency_ms["p50"] for r in measured],
            }
    return runs


def _derived(runs: dict[str, dict[str, Any]], connections: tuple[int, ...]) -> dict[str, Any]:
    """Ratios to direct within each round (the same minute of the same noise), then the median over rounds."""
    ratios: dict[str, float | None] = {}
    for c in connections:
        direct = runs["direct"][str(c)]["rounds_rps"]
        for target in ("ambassador", "nginx"):
            paired = [rps / base for rps, base in zip(runs[target][str(c)]["rounds_rps"], direct, strict=True) if base]
            ratios[f"{target}_direct_{c}"] = round(statistics.median(paired), 3) if paired else None
    # p50 of each round, then the median over rounds: one unlucky round does not move it
    single = str(min(connections))

    def p50(target: str) -> float:
        return float(statistics.median(runs[target][single]["rounds_p50_ms"]))

    added = {t: round(p50(t) - p50("direct"), 3) for t in ("ambassador", "nginx")}
    return {"ratios": ratios, "added_p50_ms_1conn": added}
