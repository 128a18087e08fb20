"""The proxy's own ceiling (issue 8): the ambassador and nginx, each as the reverse proxy in front of a fast
upstream, nginx serving a small static file on the same machine, so that the proxy is the bottleneck.

The pod's proxy benchmark (bench/proxy.py) puts both proxies in front of the webserver, which is slower than
either: it measures the cost a proxy adds, not how far it goes. Here the upstream answers in microseconds.
Both proxies run as one process with their defaults (the ambassador: `python -m ambassador`, access log on;
nginx: bench/nginx.py's reverse proxy, one worker, buffered access log). Runs are interleaved as in
bench/proxy.py; each figure is the median round, each ratio the median of the rounds' ratios.

Then the ambassador alone holds 256 and 1,000 open connections (wrk -c N): its resident memory is sampled
while they are open, and every request must succeed.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from bench import wrk
from bench.nginx import CONF_HEAD, NginxProxy
from bench.pod import http_ok
from bench.proxy import interleaved
from bench.system import free_port, mb, proc_status_kib, wait_for

PATH = "/static.html"
# About the size of nginx's own index.html: a small static answer.
STATIC_BODY = b"<!doctype html><title>static</title>\n" + b"<p>a small static file from the upstream</p>\n" * 13
TARGETS = ("ambassador", "nginx")

_STATIC_CONF = (
    CONF_HEAD
    + """
  server {{
    listen 127.0.0.1:{port};
    access_log off;
    keepalive_requests 10000000;
    location / {{ root {prefix}/www; }}
  }}
}}
"""
)


@dataclass(frozen=True)
class CeilingProfile:
    rounds: int
    seconds: float
    warmup_seconds: float
    connections: tuple[int, ...]
    held_connections: tuple[int, ...]  # the ambassador alone, memory sampled while they are open
    held_seconds: float


PROFILES = {
    "full": CeilingProfile(3, 5, 1, (1, 32, 256), (256, 1000), 5),
    "smoke": CeilingProfile(1, 1, 0, (1, 32, 256), (256, 1000), 1),
}


class NginxStatic(NginxProxy):
    """nginx serving STATIC_BODY at PATH on `port` (upstream_port is unused)."""

    conf = _STATIC_CONF

    def __init__(self) -> None:
        super().__init__(0)

    def __enter__(self) -> NginxStatic:
        super().__enter__()
        prefix = Path(self._tmp.name)
        prefix.chmod(0o755)  # run as root, nginx's worker is an unprivileged user: it must reach the file
        www = prefix / "www"
        www.mkdir(mode=0o755)
        (www / PATH.lstrip("/")).write_bytes(STATIC_BODY)
        (www / PATH.lstrip("/")).chmod(0o644)
        return self


class AmbassadorProcess:
    """`python -m ambassador` in front of `upstream_port`, with its defaults, on a free loopback port."""

    def __init__(self, upstream_port: int, log_path: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "AMBASSADOR_HOST": "127.0.0.1",
            "AMBASSADOR_PORT": str(self.port),
            "UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}",
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> AmbassadorProcess:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ambassador"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for(lambda: http_ok(self.url + "/healthz") or self._exited(), timeout=30, what="the ambassador")
            if self._exited():
                raise RuntimeError(f"the ambassador exited: {self.log_path.read_text(errors='replace')[-2000:]}")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def rss_kib(self) -> int | None:
        return None if self.process is None else proc_status_kib(self.process.pid, "VmRSS")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _held(amb: AmbassadorProcess, connections: int, seconds: float) -> dict[str, Any]:
    """wrk with `connections` open against the ambassador, its RSS sampled every 50 ms meanwhile."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            rss = amb.rss_kib()
            if rss is not None:
                samples.append(rss)

    before = amb.rss_kib()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = wrk.run(amb.url + PATH, target="ambassador", connections=connections, seconds=seconds)
    finally:
        stop.set()
        sampler.join()
    return {
        "connections": connections,
        "rss_mb_before": mb(before),
        "rss_mb_max": mb(max(samples)) if samples else None,
        "rps": result.rps,
        "requests": result.requests,
        "latency_ms": result.latency_ms,
        "errors": result.errors,
        "errors_total": sum(result.errors.values()),
    }


def measure(profile_name: str, work: Path) -> dict[str, Any]:
    profile = PROFILES[profile_name]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 8192):  # 1,000 client connections plus the upstream pool: the children inherit this
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    work.mkdir(parents=True, exist_ok=True)
    with (
        NginxStatic() as upstream,
        NginxProxy(upstream.port) as nginx,
        AmbassadorProcess(upstream.port, work / "ambassador.log") as amb,
    ):
        if not http_ok(upstream.url + PATH):
            raise RuntimeError(f"GET {PATH} of the static upstream does not answer 200")
        bases = {"ambassador": amb.url, "nginx": nginx.url}
        runs = interleaved(bases, PATH, profile.connections, profile.rounds, profile.seconds, profile.warmup_seconds)
        held = {str(c): _held(amb, c, profile.held_seconds) for c in profile.held_connections}
    ratios = {}
    for c in profile.connections:
        paired = [
            a / n
            for a, n in zip(runs["ambassador"][str(c)]["rounds_rps"], runs["nginx"][str(c)]["rounds_rps"], strict=True)
            if n
        ]
        ratios[f"ambassador_nginx_{c}"] = round(statistics.median(paired), 3) if paired else None
    return {
        "endpoint": f"GET {PATH} ({len(STATIC_BODY)} bytes) of nginx serving a static file",
        "profile": asdict(profile),
        "tool": "wrk -t1 (one thread), keep-alive connections",
        "ambassador_env": "defaults (python -m ambassador): access log on, upstream transport httptools",
        "runs": runs,
        "ratios": ratios,
        "held": held,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(results: dict[str, Any]) -> list[str]:
    """The report's section (docs/benchmarks.md)."""
    ceiling = results.get("ceiling")
    if not isinstance(ceiling, dict) or "error" in ceiling:
        return [f"Not measured: {ceiling.get('error') if isinstance(ceiling, dict) else 'not run'}"]
    lines = [
        f"{ceiling['endpoint']}, {ceiling['tool']}, {ceiling['profile']['rounds']} interleaved round(s) of "
        f"{ceiling['profile']['seconds']:g} s; each proxy one process with its defaults (the ambassador: "
        "`python -m ambassador`, access log on; nginx: one worker, buffered access log, `keepalive 64` upstream), "
        "the figure the median round, the ratio the median of the rounds' ratios. Then the ambassador alone holds "
        "256 and 1,000 connections open (wrk -c N) while its RSS is sampled every 50 ms. Load average at the end: "
        f"{', '.join(str(x) for x in ceiling['load_average_at_end'])}.",
        "",
        "| connections | proxy | requests/s | ambassador / nginx | p50 ms | p99 ms | errors |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for c in ceiling["profile"]["connections"]:
        for target in TARGETS:
            run = ceiling["runs"][target][str(c)]
            ratio = ceiling["ratios"].get(f"ambassador_nginx_{c}") if target == "ambassador" else None
            lines.append(
                f"| {c} | {target} | {run['rps']:,.0f} | {'-' if ratio is None else f'{ratio:.3f}'} | "
                f"{run['latency_ms']['p50']:.2f} | {run['latency_ms']['p99']:.2f} | {sum(run['errors'].values())} |"
            )
    lines += [
        "",
        "| open connections (ambassador alone) | requests/s | p50 ms | p99 ms | RSS before MB | RSS max MB | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c, held in ceiling["held"].items():
        lat = held["latency_ms"]
        lines.append(
            f"| {c} | {held['rps']:,.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} | {held['rss_mb_before']} | "
            f"{held['rss_mb_max']} | {held['errors_total']} |"
        )
    return lines
