"""`python -m bench` (`make bench`): run every measurement of issue 5 in one go and write the results.

Writes OUT/latest.json and OUT/<UTC time>.json (machine, versions, every figure, the ratios, the targets with
pass or miss), the Markdown report and the plot. A measurement that fails is recorded with its error and the
others go on; the exit code is then 1. `--smoke` runs everything with tiny durations and sizes (the test).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import backfill, ceiling, footprint, logins, overload, pipeline, proxy, report, targets
from bench.pod import BenchPod
from bench.profile import PROFILES, Profile
from bench.system import REPO_ROOT, machine, versions
from bench.users import BenchUsers, write_users_file

# the pod as `make run` starts it (its defaults: the ambassador's access log on), with the login rate limit out
# of the way: the load comes from one client
POD_ENV = {"LOGIN_RATE_PER_MINUTE": "1000000", "LOGIN_BURST": "1000000"}
SECTIONS = ("footprint", "proxy", "logins", "pipeline", "backfill", "overload", "ceiling")


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _section(results: dict[str, Any], name: str, measure: Callable[[], dict[str, Any]]) -> None:
    _say(f"{name} ...")
    started = time.monotonic()
    try:
        results[name] = measure()
    except Exception as exc:  # recorded, and the other measurements still run
        traceback.print_exc()
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    results.setdefault("section_seconds", {})[name] = round(time.monotonic() - started, 1)
    _say(f"{name} done in {time.monotonic() - started:.0f} s")


def bench_users(work: Path) -> BenchUsers:
    """The demo users file (as `make run` uses it) plus the bench users, hashed as the webserver would."""
    from localpod.config import Settings

    demo = Settings.from_env({**os.environ, **POD_ENV}).users_file
    return write_users_file(work / "users.txt", demo, {**os.environ, **POD_ENV})


def ambassador_settings(env: dict[str, str]) -> dict[str, Any]:
    """What the ambassador runs with (its access log is part of its cost; its one upstream transport is
    ambassador.httptools_transport)."""
    try:
        from ambassador.config import Settings

        settings = Settings.from_env(env)
    except Exception as exc:  # reported, not fatal
        return {"error": repr(exc)}
    return {"access_log": settings.access_log}


def run(profile: Profile, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {
        "schema": 1,
        "mode": profile.name,
        "command": "make bench" if profile.name == "full" else "python -m bench --smoke",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "versions": versions(),
        "profile": profile.as_dict(),
        "pod_env": POD_ENV,
    }
    wanted = set(args.only.split(",")) if args.only else set(SECTIONS)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        # the users file of both pods (16 argon2id hashes): written once
        users = bench_users(work) if wanted & {"footprint", "proxy", "logins", "pipeline", "overload"} else None
        if wanted & {"footprint", "proxy", "logins", "pipeline"}:
            _say("starting the pod in local mode")
            assert users is not None
            try:
                with BenchPod(work / "pod" / ".run", {**POD_ENV, "USERS_FILE": str(users.path)}) as pod:
                    results["pod"] = {
                        "ambassador": pod.ambassador_url,
                        "webserver": pod.web_url,
                        "ambassador_settings": ambassador_settings(pod.env),
                    }
                    if "footprint" in wanted:
                        time.sleep(profile.idle_seconds)  # the pod idles: nothing else to wait for
                        results["footprint"] = {"idle_rss_mb": footprint.rss(pod)}
                    if "proxy" in wanted:
                        _section(results, "proxy", lambda: proxy.measure(pod, args.proxy_path, profile))
                    if "logins" in wanted:
                        _section(results, "logins", lambda: logins.measure(pod, profile, users))
                    if "pipeline" in wanted:
                        for kind, name in (("malformed", "pipeline"), ("success", "pipeline_logins")):
                            _section(results, name, partial(pipeline.measure, pod, profile, users, work, kind))
                    if "footprint" in wanted:
                        results["footprint"]["rss_after_load_mb"] = footprint.rss(pod)
                        results["footprint"]["peak_rss_mb"] = footprint.peak_rss(pod)
                    results["pod"]["restarts"] = pod.restarts()
            except Exception as exc:
                traceback.print_exc()
                results["pod_error"] = f"{type(exc).__name__}: {exc}"
                for name in ("footprint", "proxy", "logins", "pipeline", "pipeline_logins"):
                    if name in wanted or (name == "pipeline_logins" and "pipeline" in wanted):
                        results.setdefault(name, {"error": f"the pod did not run: {exc}"})
        if "ceiling" in wanted:  # issue 8: the proxy against a fast upstream, no pod
            _section(results, "ceiling", lambda: ceiling.measure(profile.name, work / "ceiling"))
        if "backfill" in wanted:
            _section(
                results,
                "backfill",
                lambda: backfill.measure(profile.backfill_events, work / "backfill", profile.backfill_timeout_seconds),
            )
        if "overload" in wanted:  # a pod of its own: the flood must not disturb the other figures
            assert users is not None
            users_file = users.path
            _section(results, "overload", lambda: overload.measure(users_file, work, profile, POD_ENV))
    if "footprint" in wanted and "error" not in results.get("footprint", {"error": ""}):
        results["footprint"]["images"] = footprint.images()
    results["targets"] = targets.evaluate(results)
    results["duration_s"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def write(results: dict[str, Any], out: Path, report_path: Path, plot_path: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"].replace(":", "").replace("-", "")
    dated = out / f"bench-{stamp}.json"
    try:
        results["results_file"] = str(dated.relative_to(REPO_ROOT))
    except ValueError:
        results["results_file"] = str(dated)
    plotted = report.plot(results, plot_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report.markdown(results, plot_path if plotted else None, report_path))
    text = json.dumps(results, indent=2) + "\n"
    dated.write_text(text)
    shutil.copyfile(dated, out / "latest.json")
    return dated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny durations and sizes: checks the harness works")
    parser.add_argument("--out", type=Path, help="results directory (default bench/results; smoke: .run/bench-smoke)")
    parser.add_argument("--report", type=Path, help="the Markdown report (default docs/benchmarks.md)")
    parser.add_argument("--plot", type=Path, help="the PNG plot (default docs/bench.png)")
    parser.add_argument("--proxy-path", default="/style.css", help="the cheap webserver endpoint the proxies forward")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--work-dir", type=Path, help="where the temporary pod and backfill files go (default /tmp)")
    parser.add_argument("--render", type=Path, metavar="JSON", help="only rewrite the report and plot from results")
    args = parser.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "full"]
    default_dir = REPO_ROOT / ".run" / "bench-smoke" if args.smoke else None
    out = args.out or default_dir or REPO_ROOT / "bench" / "results"
    report_path = args.report or (default_dir or REPO_ROOT / "docs") / "benchmarks.md"
    plot_path = args.plot or (default_dir or REPO_ROOT / "docs") / "bench.png"
    if args.render:
        results = json.loads(args.render.read_text())
        results["targets"] = targets.evaluate(results)
        plotted = report.plot(results, plot_path)
        report_path.write_text(report.markdown(results, plot_path if plotted else None, report_path))
        _say(f"report in {report_path}, plot in {plot_path}")
        return 0
    results = run(profile, args)
    written = write(results, out, report_path, plot_path)
    for row in results["targets"]:
        _say(f"{row['status']:>12}  {row['name']}: {row['value']} {row['unit']} (target {row['target']})")
    _say(f"results in {written}, report in {report_path}, plot in {plot_path}, {results['duration_s']:.0f} s")
    failed = [name for name in (*SECTIONS, "pipeline_logins") if "error" in results.get(name, {})]
    if failed:
        _say(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
