"""Event pipeline latency: from a login's response to its JSON line in events/ and to its XML in xml/.

Login attempts go through the ambassador on a steady schedule (open loop: the schedule does not wait for
answers, up to a bound of attempts in flight, past which it waits rather than build a queue no real client
would), each with its own X-Request-ID, which the event carries. `bench.watch` (inotify, another process)
notes when each id appears in events/ and xml/; both sides read CLOCK_MONOTONIC.

Two kinds of attempt: `malformed` (a truncated JSON body: the webserver answers 422 and writes its
login.failure event without an argon2id verification), which holds 50 attempts/s on 2 cores, and `success`
(the bench users' real logins), whose rate is capped by argon2id: one verification costs about 35 ms of CPU
here, so 2 cores cannot do 50/s and leave anything for the rest of the pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.pod import BenchPod
from bench.profile import Profile
from bench.system import REPO_ROOT, percentile, wait_for
from bench.users import BenchUsers


@dataclass
class Load:
    answered: dict[str, int] = field(default_factory=dict)  # request id -> monotonic ns of its response
    durations_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    started_ns: int = 0
    sent: int = 0
    sent_seconds: float = 0.0  # from the first request sent to the last

    def sent_rate(self) -> float | None:
        return round((self.sent - 1) / self.sent_seconds, 1) if self.sent > 1 and self.sent_seconds else None

    def served_rate(self) -> float | None:
        """Answers per second, from the first request to the last answer: what the pod kept up with."""
        if not self.answered:
            return None
        return round(len(self.answered) / ((max(self.answered.values()) - self.started_ns) / 1e9), 1)


KINDS = ("malformed", "success")
MALFORMED_BODY = b'{"username": "bench-user-0", "password": '


async def _send(url: str, profile: Profile, users: BenchUsers, prefix: str, kind: str) -> Load:
    """POST logins at `pipeline_rate`/s for `pipeline_seconds`; when each response arrived, by request id."""
    load = Load()
    in_flight = asyncio.Semaphore(profile.pipeline_max_in_flight)
    limits = httpx.Limits(max_connections=profile.pipeline_max_in_flight)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(index: int) -> None:
            request_id = f"{prefix}{index}"
            body = (
                MALFORMED_BODY
                if kind == "malformed"
                else json.dumps({"username": users.name(index), "password": users.password}).encode()
            )
            headers = {"x-request-id": request_id, "user-agent": "bench", "content-type": "application/json"}
            sent = time.monotonic_ns()
            try:
                response = await client.post(f"{url}/login", content=body, headers=headers)
                load.answered[request_id] = time.monotonic_ns()
                load.durations_ms.append((load.answered[request_id] - sent) / 1e6)
                load.statuses[response.status_code] += 1
            except httpx.HTTPError:
                load.statuses[0] += 1
            finally:
                in_flight.release()

        load.started_ns = time.monotonic_ns()
        start = time.monotonic()
        tasks = []
        while time.monotonic() - start < profile.pipeline_seconds:
            delay = start + load.sent / profile.pipeline_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await in_flight.acquire()
            tasks.append(asyncio.create_task(one(load.sent)))
            load.sent += 1
        load.sent_seconds = time.monotonic() - start
        await asyncio.gather(*tasks)
    return load


def _read_stamps(path: Path) -> dict[str, dict[str, int]]:
    stamps: dict[str, dict[str, int]] = {"events": {}, "xml": {}}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] in stamps:
                stamps[parts[0]].setdefault(parts[1], int(parts[2]))
    return stamps


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _summary(answered: dict[str, int], seen: dict[str, int]) -> dict[str, Any]:
    """Milliseconds from each response to its sighting (negative: on disk before the client had its answer)."""
    latencies = [(seen[rid] - at) / 1e6 for rid, at in answered.items() if rid in seen]
    return {
        "count": len(latencies),
        "missing": len(answered) - len(latencies),
        "p50_ms": _round(percentile(latencies, 50)),
        "p90_ms": _round(percentile(latencies, 90)),
        "p99_ms": _round(percentile(latencies, 99)),
        "max_ms": _round(max(latencies) if latencies else None),
        "min_ms": _round(min(latencies) if latencies else None),
    }


def _warm_up(pod: BenchPod, users: BenchUsers) -> None:
    """One login end to end first: the directories exist and every stage has done its first batch."""
    events_dir, xml_dir = pod.shared / "events", pod.shared / "xml"
    warm_id = f"bench-warm-{uuid.uuid4().hex}"
    body = {"username": users.name(0), "password": users.password}
    httpx.post(f"{pod.ambassador_url}/login", json=body, headers={"x-request-id": warm_id}, timeout=60)
    wait_for(lambda: events_dir.is_dir() and xml_dir.is_dir(), timeout=30, what="events/ and xml/")
    wait_for(
        lambda: any(warm_id.encode() in p.read_bytes() for p in xml_dir.glob("*.xml")),
        timeout=30,
        interval=0.1,
        what="the warm-up login in xml/",
    )


def measure(pod: BenchPod, profile: Profile, users: BenchUsers, work_dir: Path, kind: str) -> dict[str, Any]:
    _warm_up(pod, users)
    prefix = f"bench-pipe-{uuid.uuid4().hex[:8]}-"
    stamps_file = work_dir / f"pipeline-{kind}-stamps.txt"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "bench.watch", str(pod.shared / "events"), str(pod.shared / "xml"), prefix, stamps_file],
        cwd=REPO_ROOT,
    )
    try:
        wait_for(lambda: stamps_file.exists() and stamps_file.read_text().startswith("ready"), timeout=15)
        load = asyncio.run(_send(pod.ambassador_url, profile, users, prefix, kind))

        def arrived() -> bool:
            stamps = _read_stamps(stamps_file)
            return all(rid in stamps["xml"] and rid in stamps["events"] for rid in load.answered)

        with contextlib.suppress(TimeoutError):
            wait_for(arrived, timeout=profile.pipeline_drain_seconds, interval=0.2, what="every login in xml/")
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    stamps = _read_stamps(stamps_file)
    return {
        "attempts": (
            "malformed login attempts (422, an event each, no argon2id), through the ambassador"
            if kind == "malformed"
            else f"successful logins of {users.count} rotating bench users, through the ambassador"
        ),
        "target_rate_per_s": profile.pipeline_rate,
        "max_in_flight": profile.pipeline_max_in_flight,
        "sent": load.sent,
        "sent_rate_per_s": load.sent_rate(),
        "served_rate_per_s": load.served_rate(),
        "statuses": {str(code): n for code, n in sorted(load.statuses.items())},
        "login_response_ms": {
            "p50": _round(percentile(load.durations_ms, 50)),
            "p99": _round(percentile(load.durations_ms, 99)),
        },
        "events": _summary(load.answered, stamps["events"]),
        "xml": _summary(load.answered, stamps["xml"]),
    }
