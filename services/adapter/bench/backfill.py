"""Backfill throughput of the adapter: events/s and peak RSS of a real `python -m adapter` process
converting a backlog, and optionally a cProfile summary of the conversion step (in this process).

    .venv/bin/python services/adapter/bench/backfill.py --events 1000000 [--profile 100000] [--keep DIR]

Events are realistic login events (about 330 bytes each), one in 500 taken from contracts/samples/hostile/,
in 64 MiB segments. The clock runs from the process start to the checkpoint reaching the end of the
last segment; peak RSS is the process's VmHWM.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from podkit.volume import CheckpointError, SegmentOffset, Volume, load_offset

SEGMENT_BYTES = 64 << 20
SAMPLES = Path(__file__).resolve().parents[3] / "contracts" / "samples" / "hostile"


def write_backlog(events_dir: Path, count: int) -> SegmentOffset:
    """Segments holding `count` events; returns the checkpoint that means "all converted"."""
    events_dir.mkdir(parents=True)
    hostile = [path.read_bytes() for path in sorted(SAMPLES.glob("*.json"))]
    rng = random.Random(1)  # noqa: S311  (reproducible event ids, not secrets)
    template = {
        "event_id": "",
        "timestamp": "2026-11-25T03:04:05.123456Z",
        "event_type": "login.failure",
        "outcome": "failure",
        "reason": "bad_password",
        "username": "",
        "username_truncated": False,
        "client_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "request_id": "",
        "service": "webserver",
        "pod": "login-pod-7d9f8-abcde",
    }
    number, size = 1, 0
    buffer: list[bytes] = []
    segment = events_dir / f"events-{number:08d}.jsonl"
    file = open(segment, "wb")  # noqa: SIM115
    for i in range(count):
        if i % 500 == 499:
            line = hostile[i // 500 % len(hostile)]
        else:
            template["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            template["username"] = f"user{i % 5000}"
            template["request_id"] = f"{i:016x}"
            line = json.dumps(template).encode() + b"\n"
        if size + len(line) > SEGMENT_BYTES:
            file.write(b"".join(buffer))
            file.close()
            number, size, buffer = number + 1, 0, []
            segment = events_dir / f"events-{number:08d}.jsonl"
            file = open(segment, "wb")  # noqa: SIM115
        buffer.append(line)
        size += len(line)
    file.write(b"".join(buffer))
    file.close()
    return SegmentOffset(number, segment.stat().st_size)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process: a rate that holds on a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_adapter(shared: Path, done: SegmentOffset) -> tuple[float, float, float]:
    checkpoint = Volume(shared).conversion_checkpoint
    env = {**os.environ, "SHARED_DIR": str(shared), "METRICS_HOST": "127.0.0.1", "METRICS_PORT": "0"}
    started = time.perf_counter()
    adapter = subprocess.Popen([sys.executable, "-m", "adapter"], env=env, stdout=subprocess.DEVNULL)
    try:
        while True:
            try:
                if load_offset(checkpoint) == done:
                    break
            except CheckpointError:  # caught between the write and the rename of a first checkpoint
                pass
            if adapter.poll() is not None:
                raise SystemExit(f"adapter exited with {adapter.returncode}")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        rss = peak_rss_mb(adapter.pid)
        cpu = cpu_seconds(adapter.pid)
    finally:
        adapter.terminate()
        adapter.wait(timeout=30)
    return elapsed, cpu, rss


def profile(events: int, workdir: Path) -> str:
    from adapter.converter import Converter
    from adapter.metrics import Metrics

    shared = workdir / "profile"
    write_backlog(shared / "events", events)
    converter = Converter(Volume(shared), Metrics(), 1000)
    converter.resume()
    profiler = cProfile.Profile()
    started = time.process_time()
    profiler.enable()
    while converter.step().progressed:
        pass
    profiler.disable()
    elapsed = time.process_time() - started
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return f"in-process under cProfile: {events / elapsed:,.0f} events per CPU second\n{out.getvalue()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile", type=int, default=0, help="also profile the conversion of this many events")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="adapter-bench-"))
    try:
        shared = workdir / "shared"
        started = time.perf_counter()
        done = write_backlog(shared / "events", args.events)
        size = sum(p.stat().st_size for p in (shared / "events").iterdir())
        print(
            f"backlog: {args.events:,} events, {size / 2**20:,.0f} MiB in {done.name} segments "
            f"(written in {time.perf_counter() - started:.1f} s)"
        )
        elapsed, cpu, rss = run_adapter(shared, done)
        documents = sum(1 for _ in (shared / "xml").iterdir())
        print(
            f"python -m adapter: {args.events / elapsed:,.0f} events/s wall ({elapsed:.1f} s), "
            f"{args.events / cpu:,.0f} events per CPU second ({cpu:.1f} s), {documents:,} documents, "
            f"peak RSS {rss:.0f} MB, load average {os.getloadavg()[0]:.1f}"
        )
        if args.profile:
            print(profile(args.profile, workdir))
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
