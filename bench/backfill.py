"""Backfill throughput: a file of prepared events fed to the sidecar alone, then the adapter alone on its events/.

Each service runs as `python -m <package>` with a fresh SHARED_DIR, as in the pod, and is timed from its start
until all of the input is through: the sidecar until events/ holds every byte of the source (it copies valid
lines byte for byte), the adapter until its documents cover every byte of every segment (a document's name
gives the segment and the byte range it covers). Peak memory is the kernel's VmHWM of the process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.system import free_port, mb, tree_kib

_DOCUMENT = re.compile(r"^(events-\d+\.jsonl)\.(\d+)-(\d+)\.xml$")
_LINE = (
    '{"event_id":"%s-%s-4%s-a%s-%s","timestamp":"%s%06dZ",%s,"username":"%s","username_truncated":false,'
    '"client_ip":"10.%d.%d.%d","user_agent":"Mozilla/5.0 (X11; Linux x86_64) bench","request_id":"backfill-%d",'
    '"service":"webserver","pod":"bench"}\n'
)
# a mix of outcomes, as the fields of the event type, outcome and reason
_KINDS = (
    '"event_type":"login.success","outcome":"success","reason":null',
    '"event_type":"login.failure","outcome":"failure","reason":"bad_password"',
    '"event_type":"login.failure","outcome":"failure","reason":"unknown_user"',
    '"event_type":"login.failure","outcome":"failure","reason":"bad_password"',
    '"event_type":"logout","outcome":"success","reason":null',
)
# one name in 50 holds characters that XML must escape
_USERNAMES = tuple(f"user-{n}" if n % 50 else f"<b>&amp; user {n}</b>" for n in range(5000))
_CHUNK = 10_000


def write_events(path: Path, count: int) -> int:
    """`count` valid events (contracts/login-event.schema.json), one a millisecond; returns the bytes written."""
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, count, _CHUNK):
            size = min(_CHUNK, count - start)
            random_hex = os.urandom(16 * size).hex()
            lines = []
            second = ""
            for k in range(size):
                i, j = start + k, 32 * k
                if k == 0 or i % 1000 == 0:
                    minutes, seconds = divmod(i // 1000, 60)
                    second = f"2026-11-25T{(minutes // 60) % 24:02d}:{minutes % 60:02d}:{seconds:02d}."
                h = random_hex[j : j + 32]
                lines.append(
                    _LINE
                    % (
                        h[:8],
                        h[8:12],
                        h[13:16],
                        h[17:20],
                        h[20:],
                        second,
                        (i % 1000) * 1000,
                        _KINDS[i % 5],
                        _USERNAMES[i % 5000],
                        i % 256,
                        (i >> 8) % 256,
                        (i >> 16) % 256,
                        i,
                    )
                )
            out.write("".join(lines))
    return path.stat().st_size


def _events_bytes(events_dir: Path) -> int:
    return sum(p.stat().st_size for p in events_dir.glob("events-*.jsonl")) if events_dir.is_dir() else 0


class _XmlCoverage:
    """Bytes of events/ covered by the adapter's documents so far (each document name is looked at once)."""

    def __init__(self, xml_dir: Path) -> None:
        self.xml_dir = xml_dir
        self.seen: set[str] = set()
        self.covered = 0

    def __call__(self) -> int:
        if not self.xml_dir.is_dir():
            return 0
        with os.scandir(self.xml_dir) as entries:
            for entry in entries:
                if entry.name in self.seen:
                    continue
                match = _DOCUMENT.match(entry.name)
                if match:
                    self.seen.add(entry.name)
                    self.covered += int(match.group(3)) - int(match.group(2))
        return self.covered


def _dir_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) if directory.is_dir() else 0


def run_alone(
    module: str, env: dict[str, str], progress: Callable[[], int], total: int, timeout: float, log: Path
) -> dict[str, Any]:
    """Run `python -m module` until `progress()` reaches `total` bytes (or `timeout`); time and peak memory."""
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT)
    peak_kib, done, interval = 0, 0, 0.05
    try:
        while done < total and process.poll() is None and time.monotonic() - started < timeout:
            time.sleep(interval)
            interval = min(0.2, interval * 1.1)
            peak_kib = max(peak_kib, tree_kib(process.pid, "VmHWM") or 0)
            done = progress()
        seconds = time.monotonic() - started
        peak_kib = max(peak_kib, tree_kib(process.pid, "VmHWM") or 0)
        died = process.poll()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if died is not None and done < total:
        raise RuntimeError(f"{module} exited {died} before the end: {log.read_text(errors='replace')[-2000:]}")
    return {
        "seconds": round(seconds, 2),
        "complete": done >= total,
        "fraction_done": round(done / total, 4) if total else 1.0,
        "peak_rss_mb": mb(peak_kib),
        "exit_code_after_sigterm": process.returncode,
    }


def measure(count: int, work_dir: Path, timeout: float) -> dict[str, Any]:
    work_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / "events-source.jsonl"
    t0 = time.monotonic()
    source_bytes = write_events(source, count)
    prepare_seconds = time.monotonic() - t0
    shared = work_dir / "shared"
    shared.mkdir()
    base = {**os.environ, "SHARED_DIR": str(shared), "METRICS_HOST": "127.0.0.1", "POD_NAME": "bench"}
    base.pop("SINK_URL", None)  # the sidecar alone: nothing to ship to

    sidecar = run_alone(
        "login_sidecar",
        {**base, "SOURCE_FILE": str(source), "METRICS_PORT": str(free_port())},
        lambda: _events_bytes(shared / "events"),
        source_bytes,
        timeout,
        work_dir / "sidecar.log",
    )
    events_bytes = _events_bytes(shared / "events")
    adapter = run_alone(
        "adapter",
        {**base, "METRICS_PORT": str(free_port())},
        _XmlCoverage(shared / "xml"),
        events_bytes,
        timeout,
        work_dir / "adapter.log",
    )
    for result in (sidecar, adapter):
        result["events_per_s"] = (
            round(count * result["fraction_done"] / result["seconds"]) if result["seconds"] else None
        )
    return {
        "events": count,
        "source_mb": round(source_bytes / 1e6, 1),
        "prepare_seconds": round(prepare_seconds, 1),
        "sidecar": {**sidecar, "events_mb": round(events_bytes / 1e6, 1)},
        "adapter": {**adapter, "xml_mb": round(_dir_bytes(shared / "xml") / 1e6, 1)},
        "deadletter_bytes": _dir_bytes(shared / "deadletter"),
        "note": "seconds run from the process start (imports included) until all input is through",
    }
