"""Logins per second, successful and failed, direct to the webserver and through the ambassador.

Each attempt costs one argon2id verification (an unknown user is checked against a dummy hash), so this is
the hashing limit of the machine; the ambassador should not take anything off it. Successes rotate over the
bench users and failures use a fresh unknown name per attempt: the webserver's lockout is per username.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import wrk
from bench.pod import BenchPod
from bench.profile import Profile
from bench.users import BenchUsers

KINDS = ("success", "failure")
EXPECTED = {"success": ("200", "303"), "failure": ("401",)}


def argon2_params(environ: Mapping[str, str], users_file: Path | None) -> dict[str, Any]:
    """The parameters the webserver hashes with (its settings), and those of the first stored hash."""
    params: dict[str, Any] = {}
    try:
        from webserver.config import Argon2Params  # the webserver's own reading of the environment

        configured = Argon2Params.from_env(environ)
        params["configured"] = {
            "type": "argon2id",
            "time_cost": configured.time_cost,
            "memory_kib": configured.memory_kib,
            "parallelism": configured.parallelism,
        }
    except Exception as exc:  # the benchmark reports what it cannot read instead of stopping
        params["configured"] = {"error": repr(exc)}
    if users_file is not None and users_file.exists():
        found = re.search(r"^[^:#]+:\$argon2id\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$", users_file.read_text(), re.MULTILINE)
        if found:
            params["stored_hash"] = {
                "memory_kib": int(found.group(1)),
                "time_cost": int(found.group(2)),
                "parallelism": int(found.group(3)),
            }
    return params


def measure(pod: BenchPod, profile: Profile, users: BenchUsers) -> dict[str, Any]:
    bases = {"direct": pod.web_url, "ambassador": pod.ambassador_url}
    # one short run first: the first attempts pay for cold caches
    wrk.run(f"{pod.web_url}/login", target="warmup", connections=1, seconds=1, login="success", users=users)
    runs: dict[str, dict[str, list[wrk.WrkResult]]] = {t: {k: [] for k in KINDS} for t in bases}
    for index in range(profile.login_rounds):
        # interleaved, the order turned each round, so the machine's noise falls on both paths alike
        order = list(bases) if index % 2 == 0 else list(reversed(bases))
        for kind in KINDS:
            for target in order:
                runs[target][kind].append(
                    wrk.run(
                        f"{bases[target]}/login",
                        target=target,
                        connections=profile.login_connections,
                        seconds=profile.login_seconds,
                        login=kind,
                        users=users,
                    )
                )
    results = {target: {kind: _pooled(kind, runs[target][kind]) for kind in KINDS} for target in bases}
    # the ratio within each round (the same minute of the same noise), then the median over rounds
    ratios: dict[str, float | None] = {}
    for kind in KINDS:
        paired = [
            a / d
            for a, d in zip(
                results["ambassador"][kind]["rounds_logins_per_s"],
                results["direct"][kind]["rounds_logins_per_s"],
                strict=True,
            )
            if d
        ]
        ratios[kind] = round(statistics.median(paired), 3) if paired else None
    return {
        "argon2": argon2_params(pod.env, users.path),
        "users": f"{users.count} bench users, rotating (the lockout counts attempts in flight per name)",
        "connections": profile.login_connections,
        "rounds": profile.login_rounds,
        "seconds_per_run": profile.login_seconds,
        "runs": results,
        "ratio_ambassador_direct": ratios,
    }


def _pooled(kind: str, runs: list[wrk.WrkResult]) -> dict[str, Any]:
    """The rounds of one path and kind together: expected answers over the total time."""
    seconds = sum(run.seconds for run in runs)
    statuses: dict[str, int] = {}
    for run in runs:
        for code, n in run.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    expected = sum(statuses.get(code, 0) for code in EXPECTED[kind])
    attempts = sum(run.requests for run in runs)
    return {
        "logins_per_s": round(expected / seconds, 1) if seconds else 0.0,
        "rounds_logins_per_s": [
            round(sum(run.statuses.get(code, 0) for code in EXPECTED[kind]) / run.seconds, 1) for run in runs
        ],
        "attempts": attempts,
        "expected_status": expected,
        "unexpected_status": attempts - expected,
        "statuses": statuses,
        "latency_ms": runs[len(runs) // 2].latency_ms,
        "seconds": round(seconds, 2),
    }
