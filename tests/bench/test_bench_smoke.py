"""The benchmark harness (`make bench`) in its smoke profile: it runs end to end and writes every figure.

It asserts that each figure exists and is a number, never how large it is: benchmarks are not timed tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import REPO_ROOT

pytestmark = pytest.mark.e2e

FIGURES = [
    *[
        ("proxy", "runs", target, str(connections), key)
        for target in ("direct", "ambassador", "nginx")
        for connections in (1, 32)
        for key in ("rps", "requests")
    ],
    *[
        ("proxy", "runs", target, str(connections), "latency_ms", key)
        for target in ("direct", "ambassador", "nginx")
        for connections in (1, 32)
        for key in ("p50", "p99")
    ],
    ("proxy", "ratios", "ambassador_direct_32"),
    ("proxy", "ratios", "nginx_direct_32"),
    ("proxy", "ratios", "ambassador_direct_1"),
    ("proxy", "ratios", "nginx_direct_1"),
    ("proxy", "added_p50_ms_1conn", "ambassador"),
    ("proxy", "added_p50_ms_1conn", "nginx"),
    *[
        ("logins", "runs", target, kind, "logins_per_s")
        for target in ("direct", "ambassador")
        for kind in ("success", "failure")
    ],
    ("logins", "ratio_ambassador_direct", "success"),
    ("logins", "ratio_ambassador_direct", "failure"),
    ("logins", "argon2", "configured", "memory_kib"),
    *[
        (section, stage, key)
        for section in ("pipeline", "pipeline_logins")
        for stage in ("events", "xml")
        for key in ("p50_ms", "p99_ms", "max_ms")
    ],
    *[
        ("backfill", service, key)
        for service in ("sidecar", "adapter")
        for key in ("events_per_s", "seconds", "peak_rss_mb")
    ],
    *[("footprint", "idle_rss_mb", service) for service in ("webserver", "ambassador", "login-sidecar", "adapter")],
    *[("overload", key) for key in ("hashing_capacity_per_s", "flood_attempts_per_s", "flood_over_capacity")],
    *[
        ("overload", when, probe, "p99_ms")
        for when in ("probes_at_rest", "probes_during_flood")
        for probe in ("ambassador", "webserver")
    ],
    ("overload", "honest", "success_rate"),
    # issue 8: the proxy's own ceiling (bench/ceiling.py)
    *[
        ("ceiling", "runs", target, str(connections), *key)
        for target in ("ambassador", "nginx")
        for connections in (1, 32, 256)
        for key in (("rps",), ("latency_ms", "p50"), ("latency_ms", "p99"))
    ],
    *[("ceiling", "ratios", f"ambassador_nginx_{connections}") for connections in (1, 32, 256)],
    *[
        ("ceiling", "held", str(connections), key)
        for connections in (256, 1000)
        for key in ("rss_mb_max", "rps", "errors_total")
    ],
]


def figure(results: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = results
    for key in path:
        assert isinstance(value, dict), f"{'.'.join(path)}: not an object at {key!r}"
        assert key in value, f"missing {'.'.join(path)} (at {key!r})"
        value = value[key]
    return value


def tools_missing() -> bool:
    return shutil.which("wrk") is None or (
        shutil.which("nginx") is None and shutil.which("nginx", path="/usr/sbin") is None
    )


@pytest.fixture(scope="module")
def load_tools() -> None:
    """wrk and nginx from Debian: as root bench/setup.sh installs them (once per machine), as `make bench` does."""
    if tools_missing() and os.geteuid() == 0:
        subprocess.run([REPO_ROOT / "bench" / "setup.sh"], check=True, timeout=600)
    if tools_missing():
        pytest.skip("wrk and nginx are missing: bench/setup.sh installs them as root")


@pytest.mark.usefixtures("load_tools")
def test_smoke_run_writes_every_figure_report_and_plot(tmp_path: Path) -> None:
    out, report, plot = tmp_path / "results", tmp_path / "benchmarks.md", tmp_path / "bench.png"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", out, "--report", report, "--plot", plot],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    results = json.loads((out / "latest.json").read_text())
    assert results["mode"] == "smoke"
    assert results["machine"]["cpus"] >= 1
    assert results["versions"]["packages"]["loginpod-ambassador"]
    for path in FIGURES:
        value = figure(results, path)
        assert type(value) in (int, float), f"{'.'.join(path)} = {value!r}"
    assert results["pipeline"]["xml"]["missing"] == 0
    assert results["pipeline_logins"]["xml"]["missing"] == 0
    assert results["backfill"]["sidecar"]["complete"]
    assert results["backfill"]["adapter"]["complete"]
    assert len(results["targets"]) == 18  # issue 5's 12, issue 9's 4 (overload), issue 8's 2 (ceiling)
    assert {row["status"] for row in results["targets"]} <= {"pass", "miss"}
    text = report.read_text()
    assert "## Against the targets of issue 5" in text
    assert "bench.png" in text
    assert plot.read_bytes().startswith(b"\x89PNG")
