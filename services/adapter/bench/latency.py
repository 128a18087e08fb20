"""Latency of the adapter, in two parts (not a test: numbers depend on the machine).

1. wake-up: from an append to a segment to the watcher's callback (ChangeWatcher, in this process);
2. append to document: from an append of one event to its XML document being on disk, with a real
   `python -m adapter` process (the adapter's share of the login-response-to-XML-on-disk budget).

    .venv/bin/python services/adapter/bench/latency.py [--events 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from adapter.documents import document_name
from podkit.watch import ChangeWatcher


def event_line() -> bytes:
    event = {
        "event_id": str(uuid.uuid4()),
        "timestamp": "2026-11-25T03:04:05.123456Z",
        "event_type": "login.success",
        "outcome": "success",
        "reason": None,
        "username": "demo",
        "username_truncated": False,
        "client_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
        "request_id": uuid.uuid4().hex,
        "service": "webserver",
        "pod": "login-pod-0",
    }
    return json.dumps(event).encode() + b"\n"


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    q = statistics.quantiles(ms, n=100)
    return f"{name}: n={len(ms)} p50={q[49]:.1f} ms p90={q[89]:.1f} ms p99={q[98]:.1f} ms max={ms[-1]:.1f} ms"


async def wake_up(events: int, directory: Path) -> list[float]:
    woke = asyncio.Event()
    watcher = ChangeWatcher(directory, woke.set)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await woke.wait()  # ChangeWatcher calls back once as soon as its watch is in place
    segment = directory / "events-00000001.jsonl"
    delays = []
    for _ in range(events):
        woke.clear()
        started = time.perf_counter()
        append(segment, event_line())
        await woke.wait()
        delays.append(time.perf_counter() - started)
        await asyncio.sleep(random.uniform(0.005, 0.02))  # noqa: S311  (pacing, like logins)
    stop.set()
    await task
    return delays


def append_to_document(events: int, shared: Path) -> list[float]:
    segment = shared / "events" / "events-00000001.jsonl"
    segment.parent.mkdir(parents=True)
    segment.touch()
    env = {**os.environ, "SHARED_DIR": str(shared), "METRICS_HOST": "127.0.0.1", "METRICS_PORT": "0"}
    adapter = subprocess.Popen([sys.executable, "-m", "adapter"], env=env, stdout=subprocess.DEVNULL)
    delays = []
    try:
        time.sleep(1.0)  # start-up
        offset = 0
        for _ in range(events):
            line = event_line()
            target = shared / "xml" / document_name(1, offset, offset + len(line))
            started = time.perf_counter()
            append(segment, line)
            while not target.exists():
                time.sleep(0.0002)
            delays.append(time.perf_counter() - started)
            offset += len(line)
            time.sleep(random.uniform(0.005, 0.02))  # noqa: S311  (pacing, like logins)
    finally:
        adapter.terminate()
        adapter.wait(timeout=15)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "events"
        directory.mkdir()
        print(summary("wake-up (append -> watcher callback)", asyncio.run(wake_up(args.events, directory))))
    with tempfile.TemporaryDirectory() as tmp:
        print(summary("append -> XML document on disk", append_to_document(args.events, Path(tmp) / "shared")))


if __name__ == "__main__":
    main()
