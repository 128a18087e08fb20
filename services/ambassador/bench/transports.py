"""Direct vs through the ambassador, per UPSTREAM_TRANSPORT, with wrk: the figures behind the default.

    .venv/bin/python services/ambassador/bench/transports.py [--seconds 5] [--rounds 3] [TRANSPORT ...]

Starts a trivial FastAPI endpoint on uvicorn (httptools, uvloop) and one `python -m ambassador` per
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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    parser.add_argument("transports", nargs="*", default=["httptools", "aiohttp", "httpcore"])
    args = parser.parse_args()

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
                "UPSTREAM_TRANSPORT": transport,
            }
            with (workdir / f"ambassador-{transport}.log").open("w") as log:
                proxy = subprocess.Popen([sys.executable, "-m", "ambassador"], env=env, stdout=log, stderr=log)
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
