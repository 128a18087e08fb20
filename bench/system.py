"""What the benchmark reads from the machine: free ports, process memory, the machine and the versions."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from podkit_testing import free_port, wait_for  # noqa: F401 - re-exported for the benchmarks

REPO_ROOT = Path(__file__).resolve().parents[1]

# what the pod runs on, and the libraries its hot paths go through
PACKAGES = (
    "uvicorn",
    "starlette",
    "fastapi",
    "httpx",
    "httpx-aiohttp",
    "aiohttp",
    "httptools",
    "uvloop",
    "argon2-cffi",
    "dicttoxml",
    "prometheus-client",
    "loginpod-podkit",
    "loginpod-webserver",
    "loginpod-ambassador",
    "loginpod-login-sidecar",
    "loginpod-adapter",
    "loginpod-localpod",
)


def proc_status_kib(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/PID/status (VmRSS: resident now, VmHWM: peak resident), None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (a service that forks workers is measured as a whole)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return pids


def tree_kib(pid: int, field: str) -> int | None:
    """The sum of a /proc status field over the process tree of `pid`."""
    values = [proc_status_kib(p, field) for p in process_tree(pid)]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def mb(kib: int | None) -> float | None:
    """Kernel kB (KiB) to MB (10^6 bytes), the unit of the targets."""
    return None if kib is None else round(kib * 1024 / 1e6, 1)


def _command_output(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else None


def _version(banner: str | None) -> str | None:
    """`wrk debian/4.1.0-3+b2 [epoll] ...` -> `4.1.0-3+b2`; `nginx version: nginx/1.22.1` -> `1.22.1`."""
    if banner is None:
        return None
    found = re.search(r"/(\d[\w.+~-]*)", banner)
    return found.group(1) if found else banner


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = found.group(1) if found else ""
    mem_kib = 0
    with contextlib.suppress(OSError):
        found = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
        mem_kib = int(found.group(1)) if found else 0
    os_name = ""
    with contextlib.suppress(OSError):
        found = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.MULTILINE)
        os_name = found.group(1) if found else ""
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu,
        "cpus": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": os_name,
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        commit = done.stdout.strip() or None
    return {
        "python": sys.version.split()[0],
        "git_commit": commit,
        "wrk": _version(_command_output(["wrk", "-v"])),
        "nginx": _version(_command_output([nginx_binary() or "nginx", "-v"])),
        "packages": packages,
    }


def nginx_binary() -> str | None:
    """nginx lives in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("nginx") or (shutil.which("nginx", path="/usr/sbin:/usr/local/sbin"))


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of `values` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]
