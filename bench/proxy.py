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
        for target, base in bases.items():
            if not http_ok(base + path):
                raise RuntimeError(f"GET {path} via {target} does not answer 200")
        rounds: dict[str, dict[int, list[wrk.WrkResult]]] = {
            t: {c: [] for c in profile.proxy_connections} for t in TARGETS
        }
        for index in range(profile.proxy_rounds):
            order = TARGETS[index % 3 :] + TARGETS[: index % 3]
            for connections in profile.proxy_connections:
                for target in order:
                    url = bases[target] + path
                    if profile.proxy_warmup_seconds:
                        wrk.run(url, target=target, connections=connections, seconds=profile.proxy_warmup_seconds)
                    result = wrk.run(url, target=target, connections=connections, seconds=profile.proxy_seconds)
                    rounds[target][connections].append(result)
    runs: dict[str, dict[str, Any]] = {}
    for target, by_connections in rounds.items():
        runs[target] = {}
        for connections, results in by_connections.items():
            ordered = sorted(results, key=lambda r: r.rps)
            median = ordered[len(ordered) // 2]
            runs[target][str(connections)] = {
                **median.as_dict(),
                "rounds_rps": [r.rps for r in results],
                "rounds_p50_ms": [r.latency_ms["p50"] for r in results],
            }
    return {
        "endpoint": f"GET {path}",
        "rounds": profile.proxy_rounds,
        "seconds_per_run": profile.proxy_seconds,
        "tool": "wrk -t1 (one thread), keep-alive connections",
        "runs": runs,
        **_derived(runs, profile.proxy_connections),
    }


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
