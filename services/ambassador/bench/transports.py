"""Direct vs through the ambassador, per upstream transport, with wrk: the figures behind the one it runs.

    .venv/bin/python services/ambassador/bench/transports.py [--seconds 5] [--rounds 3] [TRANSPORT ...]

The ambassador runs only its own transport (httptools: ambassador.httptools_transport). The two it was
measured against are built here, for this comparison only: `httpcore` (httpx's default transport) and
`aiohttp` (httpx-aiohttp; a development requirement, never in an image). `--serve TRANSPORT` runs the
ambassador, configured from the environment as `python -m ambassador` is, on one of them (the ambassador
tests' test_transports.py uses it too).

Starts a trivial FastAPI endpoint on uvicorn (httptools, uvloop) and one ambassador per
transport, all on free ports; then, per round, wrk against the upstream directly and through the
ambassador, at 1 and 32 connections (`wrk -t1 -cN -dS --latency`). Prints medians over the rounds: requests
per second, p50, the ratio to direct, the added p50, and CPU per request of the ambassador and the upstream
(from /proc, so the figure holds up better than throughput when the machine is shared). Needs wrk
(`apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
from ambassador.config import Settings
from ambassador.server import build_server
from ambassador.upstream import KEEPALIVE_EXPIRY, NO_BODY, Upstream
from podkit import jsonlog
from podkit.config import load_or_exit
from podkit.serve import serve
from podkit_testing import free_port

TRANSPORTS = ("httptools", "aiohttp", "httpcore")

UPSTREAM_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/")
async def root():
    return {"hello": "world"}

@app.get("/healthz")
async def healthz():
    return {"ok": True}
"""


class AiohttpUpstream(httpx.AsyncBaseTransport):
    """httpx-aiohttp's transport, fed what the ambassador's Upstream builds for its own transport.

    httpx-aiohttp sends str(request.url), not the `target` extension, and sends a body it was given as
    bytes, even an empty one, chunked: this rebuilds each request with its full URL and without an empty
    body. Its errors arrive as httpx's by the first matching aiohttp base class (a refused connection as
    ConnectTimeout): this raises the ones the ambassador classifies, so its answers (502, 504) are the same.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        import aiohttp
        from httpx_aiohttp import AiohttpTransport

        def session() -> aiohttp.ClientSession:
            # The session httpx-aiohttp would build, minus the headers aiohttp adds on its own (Accept,
            # Accept-Encoding: gzip would let the upstream compress for a client that never asked, User-Agent).
            connector = aiohttp.TCPConnector(limit=limits.max_connections or 0, keepalive_timeout=KEEPALIVE_EXPIRY)
            return aiohttp.ClientSession(
                connector=connector,
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )

        self._transport = AiohttpTransport(limits=limits, trust_env=False, client=session)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target: bytes = request.extensions.get("target", request.url.raw_path)
        url = request.url.copy_with(raw_path=target)
        stream = None if request.stream is NO_BODY else request.stream
        timeout = {"timeout": request.extensions["timeout"]}
        sent = httpx.Request(request.method, url, headers=request.headers.raw, stream=stream, extensions=timeout)
        try:
            return await self._transport.handle_async_request(sent)
        except httpx.TransportError as exc:
            raise _as_classified(exc) from exc

    async def aclose(self) -> None:
        await self._transport.aclose()


def _as_classified(exc: httpx.TransportError) -> httpx.TransportError:
    import aiohttp

    cause = exc.__cause__
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(cause))
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(str(cause))
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(cause))
    return httpx.RemoteProtocolError(str(cause or exc))


def build_upstream(transport: str, settings: Settings) -> Upstream:
    """The ambassador's Upstream on `transport`: its own (httptools), httpcore or aiohttp."""
    if transport == "httptools":
        return Upstream(settings)
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    if transport == "httpcore":  # honours the `target` extension, as ours does
        return Upstream(settings, httpx.AsyncHTTPTransport(limits=limits, trust_env=False))
    return Upstream(settings, AiohttpUpstream(limits))


def serve_ambassador(transport: str) -> None:
    """`python -m ambassador`, on `transport`."""
    settings = load_or_exit(lambda: Settings.from_env(os.environ))
    jsonlog.configure("ambassador", settings.log_level)
    serve(build_server(settings, build_upstream(transport, settings)))


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (a local URL we built)
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wrk(url: str, connections: int, seconds: int) -> tuple[float, float, int]:
    """Requests per second, p50 in microseconds, requests."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)
    assert p50 is not None
    return rps, float(p50.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[p50.group(2)], count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=TRANSPORTS, help="run one ambassador on this transport, until SIGTERM")
    parser.add_argument("transports", nargs="*", default=list(TRANSPORTS), help=", ".join(TRANSPORTS))
    args = parser.parse_args()
    if args.serve:
        serve_ambassador(args.serve)
        return

    workdir = Path(tempfile.mkdtemp(prefix="ambassador-bench-"))  # the upstream app and the logs
    (workdir / "upstream_app.py").write_text(UPSTREAM_APP)
    up_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "upstream_app:app", "--port", str(up_port), "--http", "httptools",
         "--loop", "uvloop", "--no-access-log", "--log-level", "warning"],
        cwd=workdir,
    )  # fmt: skip
    direct = f"http://127.0.0.1:{up_port}/"
    try:
        wait_ready(direct + "healthz")
        for transport in args.transports:
            port = free_port()
            env = {
                **os.environ,
                "AMBASSADOR_HOST": "127.0.0.1",
                "AMBASSADOR_PORT": str(port),
                "UPSTREAM_URL": direct.rstrip("/"),
            }
            with (workdir / f"ambassador-{transport}.log").open("w") as log:
                command = [sys.executable, __file__, "--serve", transport]
                proxy = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            via = f"http://127.0.0.1:{port}/"
            try:
                wait_ready(via + "healthz")
                wrk(via, 32, 2)  # warm up: connections, caches
                for connections in (1, 32):
                    rows = []
                    for _ in range(args.rounds):
                        d_rps, d_p50, _ = wrk(direct, connections, args.seconds)
                        a0, u0 = cpu_ticks(proxy.pid), cpu_ticks(upstream.pid)
                        a_rps, a_p50, count = wrk(via, connections, args.seconds)
                        a1, u1 = cpu_ticks(proxy.pid), cpu_ticks(upstream.pid)
                        tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
                        rows.append(
                            (d_rps, d_p50, a_rps, a_p50, (a1 - a0) * tick_us / count, (u1 - u0) * tick_us / count)
                        )
                    med = [statistics.median(column) for column in zip(*rows, strict=True)]
                    ratio = statistics.median(row[2] / row[0] for row in rows)
                    added = statistics.median(row[3] - row[1] for row in rows)
                    print(
                        f"{transport:9s} c={connections:<2d} direct {med[0]:6.0f} rps p50 {med[1]:5.0f} us | "
                        f"ambassador {med[2]:6.0f} rps p50 {med[3]:6.0f} us | ratio {ratio:.2f}, added p50 "
                        f"{added:5.0f} us | CPU/request: ambassador {med[4]:4.0f} us, upstream {med[5]:4.0f} us | "
                        f"load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
            finally:
                proxy.send_signal(signal.SIGTERM)
                proxy.wait(30)
    finally:
        upstream.send_signal(signal.SIGTERM)
        upstream.wait(30)


if __name__ == "__main__":
    main()
