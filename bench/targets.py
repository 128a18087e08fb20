"""Issue 5's targets, checked against the figures of the same run: pass or miss, and whether the goal is met."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    path: tuple[str, ...]  # where the figure is in the results
    op: str  # ">=" or "<="
    limit: float
    goal: float | None = None
    unit: str = ""


TARGETS = (
    Target("ambassador/direct throughput, 32 connections", ("proxy", "ratios", "ambassador_direct_32"), ">=", 0.5, 0.6),
    Target(
        "added p50 latency via ambassador, 1 connection",
        ("proxy", "added_p50_ms_1conn", "ambassador"),
        "<=",
        0.4,
        0.3,
        "ms",
    ),
    Target("logins via ambassador / direct (success)", ("logins", "ratio_ambassador_direct", "success"), ">=", 0.95),
    Target("logins via ambassador / direct (failure)", ("logins", "ratio_ambassador_direct", "failure"), ">=", 0.95),
    Target("pipeline: response -> XML, p50, 50 attempts/s", ("pipeline", "xml", "p50_ms"), "<=", 20, None, "ms"),
    Target("pipeline: response -> XML, p99, 50 attempts/s", ("pipeline", "xml", "p99_ms"), "<=", 100, None, "ms"),
    Target("pipeline: response -> XML, p50, real logins", ("pipeline_logins", "xml", "p50_ms"), "<=", 20, None, "ms"),
    Target("pipeline: response -> XML, p99, real logins", ("pipeline_logins", "xml", "p99_ms"), "<=", 100, None, "ms"),
    Target("backfill: sidecar", ("backfill", "sidecar", "events_per_s"), ">=", 50_000, None, "events/s"),
    Target("backfill: adapter", ("backfill", "adapter", "events_per_s"), ">=", 10_000, 20_000, "events/s"),
    Target("backfill: sidecar peak RSS", ("backfill", "sidecar", "peak_rss_mb"), "<=", 200, None, "MB"),
    Target("backfill: adapter peak RSS", ("backfill", "adapter", "peak_rss_mb"), "<=", 200, None, "MB"),
    # issue 9: a login flood of 20x the hashing capacity from many clients
    Target("overload: flood / hashing capacity", ("overload", "flood_over_capacity"), ">=", 20, None, "x"),
    *[
        Target(
            f"overload: {probe} /healthz p99 during the flood",
            ("overload", "probes_during_flood", probe, "p99_ms"),
            "<=",
            100,
            None,
            "ms",
        )
        for probe in ("ambassador", "webserver")
    ],
    Target("overload: normal user's logins that succeed", ("overload", "honest", "success_rate"), ">=", 0.9),
    # issue 8: the proxy's own ceiling, in front of a static file (bench/ceiling.py)
    Target("ceiling: ambassador/nginx, 32 connections", ("ceiling", "ratios", "ambassador_nginx_32"), ">=", 0.25, 0.4),
    Target("ceiling: ambassador errors, 1,000 connections", ("ceiling", "held", "1000", "errors_total"), "<=", 0),
)


def figure(results: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _meets(value: float, op: str, limit: float) -> bool:
    return value >= limit if op == ">=" else value <= limit


def _note(results: dict[str, Any], target: Target) -> str | None:
    """The pipeline's targets hold at 50 logins/s: say at which rate the pod answered when it was fewer."""
    section = target.path[0]
    if not section.startswith("pipeline"):
        return None
    served = figure(results, (section, "served_rate_per_s"))
    wanted = figure(results, (section, "target_rate_per_s"))
    if isinstance(served, int | float) and isinstance(wanted, int | float) and served < 0.9 * wanted:
        return f"at {served:g}/s: the pod answered fewer than {wanted:g}/s"
    return None


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for target in TARGETS:
        value = figure(results, target.path)
        measured = isinstance(value, int | float)
        rows.append(
            {
                "name": target.name,
                "figure": ".".join(target.path),
                "value": value,
                "unit": target.unit,
                "target": f"{target.op} {target.limit:,g}",
                "goal": None if target.goal is None else f"{target.op} {target.goal:,g}",
                "status": ("pass" if _meets(value, target.op, target.limit) else "miss")
                if measured
                else "not measured",
                "goal_met": (_meets(value, target.op, target.goal) if measured and target.goal is not None else None),
                "note": _note(results, target),
            }
        )
    return rows
