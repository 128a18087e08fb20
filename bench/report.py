"""The Markdown report (docs/benchmarks.md) and the plot, both made from the results JSON alone."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from bench import ceiling
from bench.targets import figure

COLOURS = {"direct": "#4c72b0", "ambassador": "#dd8452", "nginx": "#55a868"}
ANALYSIS = Path(__file__).with_name("analysis.md")


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value >= 1000):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _error(section: Any) -> str | None:
    return section.get("error") if isinstance(section, dict) and section else "not run"  # {}: --only skipped it


def targets_table(results: dict[str, Any]) -> list[str]:
    lines = ["| target | measured | required | goal | result |", "|---|---:|---|---|---|"]
    for row in results.get("targets", []):
        value = row["value"]
        shown = _n(value, (2 if row["unit"] else 3) if isinstance(value, float) and value < 10 else 1)
        unit = f" {row['unit']}" if row["unit"] and value is not None else ""
        result = row["status"]
        if row["goal_met"] is not None:
            result += ", goal met" if row["goal_met"] else ", goal not met"
        if row.get("note"):
            result += f" ({row['note']})"
        lines.append(f"| {row['name']} | {shown}{unit} | {row['target']} | {row['goal'] or '-'} | {result} |")
    return lines


def _proxy(results: dict[str, Any]) -> list[str]:
    proxy = results.get("proxy", {})
    if _error(proxy):
        return [f"Not measured: {_error(proxy)}"]
    lines = [
        f"{proxy['endpoint']} of the webserver, wrk with one thread, {proxy['rounds']} interleaved round(s) of "
        f"{proxy['seconds_per_run']:g} s per target and connection count. Rates and latencies: the median round; "
        "vs direct: the median over rounds of the ratio within each round.",
        "",
        "| connections | path | requests/s | vs direct | p50 ms | p90 ms | p99 ms | max ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for connections in sorted({int(c) for runs in proxy["runs"].values() for c in runs}):
        for target in ("direct", "ambassador", "nginx"):
            run = proxy["runs"][target][str(connections)]
            lat = run["latency_ms"]
            ratio = 1.0 if target == "direct" else proxy["ratios"].get(f"{target}_direct_{connections}")
            lines.append(
                f"| {connections} | {target} | {_n(run['rps'])} | {_n(ratio, 2)} | {_n(lat['p50'], 2)} | "
                f"{_n(lat['p90'], 2)} | {_n(lat['p99'], 2)} | {_n(lat['max'], 1)} |"
            )
    added = proxy["added_p50_ms_1conn"]
    settings = results.get("pod", {}).get("ambassador_settings", {})
    lines += [
        "",
        # results before issue 11 name the transport; since, it is always ambassador.httptools_transport
        f"The ambassador's upstream transport: {settings.get('upstream_transport', 'httptools')}.",
        "",
        f"Added p50 latency at 1 connection: ambassador {added['ambassador']:+.3f} ms, nginx {added['nginx']:+.3f} ms "
        "(median over rounds of each round's p50, minus direct's).",
    ]
    return lines


def _logins(results: dict[str, Any]) -> list[str]:
    logins = results.get("logins", {})
    if _error(logins):
        return [f"Not measured: {_error(logins)}"]
    argon = logins["argon2"].get("configured", {})
    params = (
        f"argon2id m={argon.get('memory_kib')} KiB, t={argon.get('time_cost')}, p={argon.get('parallelism')}"
        if "memory_kib" in argon
        else "argon2id (parameters unknown)"
    )
    runs, ratio = logins["runs"], logins["ratio_ambassador_direct"]
    lines = [
        f"POST /login (JSON), {logins['connections']} connections, {logins['rounds']} interleaved round(s) of "
        f"{logins['seconds_per_run']:g} s per path and outcome; {params}. Successes rotate over "
        "bench users; failures are unknown users (verified against the dummy hash: the same cost).",
        "",
        "| path | successful logins/s | failed logins/s | unexpected answers |",
        "|---|---:|---:|---:|",
    ]
    for target in ("direct", "ambassador"):
        run = runs[target]
        unexpected = run["success"]["unexpected_status"] + run["failure"]["unexpected_status"]
        lines.append(
            f"| {target} | {_n(run['success']['logins_per_s'])} | {_n(run['failure']['logins_per_s'])} | {unexpected} |"
        )
    lines.append(
        f"| ambassador / direct (median of the rounds' ratios) | {_n(ratio['success'], 3)} | "
        f"{_n(ratio['failure'], 3)} | |"
    )
    return lines


def _pipeline(results: dict[str, Any]) -> list[str]:
    lines = [
        "Time from each attempt's response to its line in events/ and to its document in xml/ (inotify). "
        "Negative: on disk before the client had its answer.",
    ]
    for name in ("pipeline", "pipeline_logins"):
        pipeline = results.get(name, {})
        lines.append("")
        if _error(pipeline):
            lines.append(f"{name}: not measured: {_error(pipeline)}")
            continue
        lines += [
            f"**{pipeline['attempts']}**: {pipeline['sent']} sent at {_n(pipeline['sent_rate_per_s'])}/s "
            f"(schedule {_n(pipeline['target_rate_per_s'], 0)}/s, at most {pipeline['max_in_flight']} in flight), "
            f"answered at {_n(pipeline['served_rate_per_s'])}/s; response p50 "
            f"{_n(pipeline['login_response_ms']['p50'], 1)} ms, p99 {_n(pipeline['login_response_ms']['p99'], 1)} ms.",
            "",
            "| from the response to | p50 ms | p90 ms | p99 ms | max ms | seen | missing |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for stage, label in (("events", "its JSON line in events/"), ("xml", "its XML in xml/")):
            s = pipeline[stage]
            lines.append(
                f"| {label} | {_n(s['p50_ms'], 1)} | {_n(s['p90_ms'], 1)} | {_n(s['p99_ms'], 1)} | "
                f"{_n(s['max_ms'], 1)} | {s['count']} | {s['missing']} |"
            )
    return lines


def _backfill(results: dict[str, Any]) -> list[str]:
    backfill = results.get("backfill", {})
    if _error(backfill):
        return [f"Not measured: {_error(backfill)}"]
    lines = [
        f"{backfill['events']:,} prepared events ({_n(backfill['source_mb'])} MB of JSON Lines), a fresh SHARED_DIR; "
        "each service alone, timed from its process start until all input is through.",
        "",
        "| service | events/s | seconds | peak RSS MB | complete |",
        "|---|---:|---:|---:|---|",
    ]
    for name in ("sidecar", "adapter"):
        s = backfill[name]
        lines.append(
            f"| {name} | {_n(s['events_per_s'])} | {_n(s['seconds'])} | {_n(s['peak_rss_mb'])} | {_n(s['complete'])} |"
        )
    return lines


def _footprint(results: dict[str, Any]) -> list[str]:
    footprint = results.get("footprint", {})
    if _error(footprint):
        return [f"Not measured: {_error(footprint)}"]
    after = footprint.get("rss_after_load_mb", {})
    peak = footprint.get("peak_rss_mb", {})
    lines = ["| service | idle RSS MB | RSS after the load MB | peak RSS MB |", "|---|---:|---:|---:|"]
    for name, idle in footprint.get("idle_rss_mb", {}).items():
        lines.append(f"| {name} | {_n(idle)} | {_n(after.get(name))} | {_n(peak.get(name))} |")
    images = footprint.get("images", {})
    lines.append("")
    if images.get("available"):
        lines += ["| image | size MB |", "|---|---:|"]
        lines += [f"| {name} | {_n(image['size_mb'])} |" for name, image in sorted(images["images"].items())]
    else:
        lines.append(f"Images: {images.get('reason', 'not measured')}.")
    return lines


def _overload(results: dict[str, Any]) -> list[str]:
    over = results.get("overload", {})
    if _error(over):
        return [f"Not measured: {_error(over)}"]
    honest, rest, flood = over["honest"], over["probes_at_rest"], over["probes_during_flood"]
    lines = [
        f"`bench/overload.py`: {over['flood_clients']} clients flood POST /login through the ambassador for "
        f"{over['flood_seconds']:g} s, each sending its next attempt when the last is answered: "
        f"{_n(over['flood_attempts_per_s'])} attempts/s, {_n(over['flood_over_capacity'])} x the hashing capacity "
        f"({_n(over['hashing_capacity_per_s'])} verified logins/s); answers {over['flood_statuses']}; the 503s came "
        f"in {_n(over['overloaded_503']['p50_ms'])} ms (p50), {_n(over['overloaded_503']['p99_ms'])} ms (p99). "
        f"A normal user logging in every 0.5 s (first answer, no retry): {honest['successes']} of "
        f"{honest['attempts']} succeeded, in {_n(honest['success_latency']['p50_ms'])} ms (p50).",
        "",
        "| GET /healthz | at rest p50 / p99 ms | during the flood p50 / p99 / max ms | failed |",
        "|---|---:|---:|---:|",
    ]
    for probe in ("ambassador", "webserver"):
        a, b = rest[probe], flood[probe]
        lines.append(
            f"| {probe} | {_n(a['p50_ms'])} / {_n(a['p99_ms'])} | {_n(b['p50_ms'])} / {_n(b['p99_ms'])} / "
            f"{_n(b['max_ms'])} | {b['failures']} |"
        )
    return lines


def markdown(results: dict[str, Any], plot: Path | None, report: Path) -> str:
    machine, versions = results["machine"], results["versions"]
    packages = versions["packages"]
    plot_line = []
    if plot is not None and plot.exists():
        plot_line = [f"![latency distribution and throughput]({os.path.relpath(plot, report.parent)})", ""]
    lines = [
        "# Benchmarks",
        "",
        f"`{results['command']}` ({results['mode']} run) at {results['started_at']}, {results['duration_s']:.0f} s; "
        f"commit {versions.get('git_commit')}. Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB, {machine['os']}, Linux {machine['kernel']}; load average (1, 5, 15 min) "
        f"{', '.join(str(x) for x in machine['load_average_at_start'])} at the start, "
        f"{', '.join(str(x) for x in machine.get('load_average_at_end', []))} at the end. Python {versions['python']}, "
        f"uvicorn {packages.get('uvicorn')}, httpx {packages.get('httpx')}, aiohttp {packages.get('aiohttp')}, "
        f"wrk {versions.get('wrk')}, nginx {versions.get('nginx')}. The figures of one run: the machine is shared and "
        "noisy, so compare the ratios, which are taken side by side in the same run. Raw figures: "
        f"`{results.get('results_file', 'bench/results/latest.json')}`.",
        "",
        "## Against the targets of issue 5",
        "",
        *targets_table(results),
        "",
        "## Proxy overhead",
        "",
        *plot_line,
        *_proxy(results),
        "",
        "## The proxy's own ceiling (a static file upstream)",
        "",
        *ceiling.markdown(results),
        "",
        "## Logins",
        "",
        *_logins(results),
        "",
        "## Event pipeline latency",
        "",
        *_pipeline(results),
        "",
        "## Backfill",
        "",
        *_backfill(results),
        "",
        "## Footprint",
        "",
        *_footprint(results),
        "",
        "## Overload (issue 9)",
        "",
        *_overload(results),
        "",
        "## How it is measured",
        "",
        "- `make bench` (bench/setup.sh installs wrk and nginx from Debian when missing, then `python -m bench`) "
        "starts the pod in local mode (`python -m localpod`) on free ports, with its defaults (the ambassador's "
        "access log on) except the ambassador's login rate limit, lifted (LOGIN_RATE_PER_MINUTE, LOGIN_BURST): "
        "the load comes from one client. The users file is the demo one plus 16 bench users hashed with the "
        "webserver's own argon2id parameters.",
        "- nginx is started by the benchmark: one worker process (the ambassador is one process), HTTP/1.1 "
        "keep-alive to the same upstream (`keepalive 64`), an access log written in 64 KiB batches (the "
        "ambassador batches its own). wrk runs with one thread; every figure is from the same run.",
        "- The pipeline watcher (`bench/watch.py`) is a separate process woken by inotify when the sidecar appends "
        "to a segment or the adapter renames a document into place; it and the load generator read the same "
        "CLOCK_MONOTONIC.",
        "- Backfill runs `python -m login_sidecar` on the prepared file with a fresh SHARED_DIR, then "
        "`python -m adapter` on the events/ it wrote; peak RSS is the process's VmHWM from /proc.",
        "- Overload (`bench/overload.py`) runs in a pod of its own with the defaults (argon2id included) and "
        "TRUSTED_PROXIES=127.0.0.0/8: the flood's clients (podkit_testing.LoginFlood) connect from loopback "
        "addresses and name themselves in X-Forwarded-For (198.18.0.0/15), as clients behind a front proxy. Each "
        "sends its next attempt when the last is answered, so its rate is what the pod answers; the probes and "
        "the normal user run beside it in the same process.",
        "- `tests/bench/` runs the whole harness in a smoke profile (tiny durations and sizes) and checks that the "
        "JSON holds every figure; no test asserts a timing.",
    ]
    if ANALYSIS.exists():
        lines += ["", ANALYSIS.read_text().strip()]
    return "\n".join(lines) + "\n"


def _nines(percent: float) -> float:
    return -math.log10(1 - min(percent, 99.999) / 100)


def plot(results: dict[str, Any], path: Path) -> bool:
    """Latency distribution (left) and throughput (right): ambassador vs nginx vs direct. False if no data."""
    runs = figure(results, ("proxy", "runs"))
    if not isinstance(runs, dict):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    connections = sorted({int(c) for by_target in runs.values() for c in by_target})
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    styles = {connections[0]: "--", connections[-1]: "-"}
    for target, by_connections in runs.items():
        for c in connections:
            pcts = by_connections[str(c)]["percentiles_ms"]
            xs = [_nines(float(p)) for p in pcts]
            left.plot(xs, list(pcts.values()), styles.get(c, "-"), color=COLOURS[target], label=f"{target}, {c} conn")
    ticks = [0, 50, 90, 99, 99.9, 99.99]
    left.set_xticks([_nines(t) for t in ticks], [f"p{t:g}" if t else "p0" for t in ticks])
    left.set_yscale("log")
    left.set_ylabel("latency (ms, log scale)")
    left.set_xlabel("percentile")
    left.set_title(f"Latency distribution, {results['proxy']['endpoint']}")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    width = 0.26
    for index, target in enumerate(("direct", "ambassador", "nginx")):
        values = [runs[target][str(c)]["rps"] for c in connections]
        xs = [i + (index - 1) * width for i in range(len(connections))]
        bars = right.bar(xs, values, width, color=COLOURS[target], label=target)
        right.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    right.set_xticks(range(len(connections)), [f"{c} connection{'s' if c > 1 else ''}" for c in connections])
    right.set_ylabel("requests/s")
    right.set_title("Throughput")
    top = max(runs[t][str(c)]["rps"] for t in runs for c in connections)
    right.set_ylim(0, top * 1.2)  # room for the legend above the bars
    right.legend(fontsize=8, ncol=3, loc="upper center")
    fig.suptitle(f"login pod proxy overhead ({results['mode']} run, {results['started_at']})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
