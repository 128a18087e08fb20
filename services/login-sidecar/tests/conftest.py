"""Fixtures: a source file the way the webserver writes it, the shared volume, and in-process sidecars."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from login_sidecar.config import Settings
from login_sidecar.service import Service
from podkit import watch as watcher
from podkit_testing import wait_until


def make_event(number: int = 0, **fields: Any) -> dict[str, Any]:
    """A valid login event (contracts/login-event.schema.json)."""
    return {
        "event_id": str(uuid.uuid4()),
        "timestamp": f"2026-11-25T03:04:05.{number % 1_000_000:06d}Z",
        "event_type": "login.failure",
        "outcome": "failure",
        "reason": "bad_password",
        "username": f"user-{number}",
        "username_truncated": False,
        "client_ip": "203.0.113.7",
        "user_agent": "pytest",
        "request_id": f"req-{number}",
        "service": "webserver",
        "pod": "test",
        **fields,
    }


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


class Source:
    """The webserver's events file: single-write appends with O_APPEND, rotation by rename, copytruncate."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def write(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def event(self, **fields: Any) -> dict[str, Any]:
        """A new valid event (not written)."""
        self.count += 1
        return make_event(self.count, **fields)

    @staticmethod
    def line(event: dict[str, Any]) -> bytes:
        return encode(event)

    def append(self, n: int = 1) -> list[str]:
        """Append `n` events; returns their event_ids."""
        events = [self.event() for _ in range(n)]
        self.write(b"".join(encode(event) for event in events))
        return [event["event_id"] for event in events]

    def rotated(self, generation: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{generation}")

    def rotate(self, keep: int = 2) -> None:
        """events.jsonl -> .1 -> .2 (the oldest beyond `keep` is dropped); the next append creates a new file."""
        for generation in range(keep, 0, -1):
            older = self.rotated(generation - 1) if generation > 1 else self.path
            if older.exists():
                os.replace(older, self.rotated(generation))

    def copytruncate(self) -> None:
        """logrotate's copytruncate: copy to .1 (older copies move up), then truncate in place."""
        if self.rotated(1).exists():
            os.replace(self.rotated(1), self.rotated(2))
        shutil.copyfile(self.path, self.rotated(1))
        os.truncate(self.path, 0)


class Shared:
    """What the sidecar wrote to SHARED_DIR."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.events_dir = root / "events"

    def segments(self) -> list[Path]:
        return sorted(self.events_dir.glob("events-*.jsonl"))

    def lines(self) -> list[bytes]:
        return [line for segment in self.segments() for line in segment.read_bytes().splitlines()]

    def event_ids(self) -> list[str]:
        return [json.loads(line)["event_id"] for line in self.lines()]

    def deadletters(self) -> list[dict[str, Any]]:
        path = self.root / "deadletter" / "login-sidecar.jsonl"
        return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []

    def checkpoint(self, name: str) -> dict[str, Any] | None:
        path = self.root / "state" / "login-sidecar" / name
        return json.loads(path.read_bytes()) if path.exists() else None

    def checkpointed(self) -> bool:
        """tail.json covers everything in events/."""
        checkpoint, segments = self.checkpoint("tail.json"), self.segments()
        return (
            checkpoint is not None
            and checkpoint["segment"] == segments[-1].name
            and checkpoint["segment_size"] == segments[-1].stat().st_size
        )

    def holds(self, ids: list[str]) -> bool:
        """events/ holds exactly these events, in this order, and tail.json covers them."""
        return self.event_ids() == ids and self.checkpointed()


class Sidecar:
    """One service instance running in this event loop."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.task = asyncio.create_task(service.run())

    @property
    def metrics(self) -> Any:
        return self.service.metrics

    def value(self, name: str, **labels: str) -> float:
        value = self.service.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value

    async def get(self, path: str) -> httpx.Response:
        await wait_until(lambda: self.service.probe.port != 0, what="the probe port")
        async with httpx.AsyncClient() as client:
            return await client.get(f"http://127.0.0.1:{self.service.probe.port}{path}")

    async def stop(self) -> None:
        """Graceful stop, as on SIGTERM."""
        self.service.request_stop()
        await asyncio.wait_for(self.task, 30)

    async def crash(self) -> None:
        """Stop without any flushing, as close to SIGKILL as a task gets (the step in flight finishes)."""
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


@pytest.fixture
def source(tmp_path: Path) -> Source:
    (tmp_path / "log").mkdir()
    return Source(tmp_path / "log" / "events.jsonl")


@pytest.fixture
def shared(tmp_path: Path) -> Shared:
    return Shared(tmp_path / "shared")


@pytest.fixture
def env(source: Source, shared: Shared) -> dict[str, str]:
    return {
        "SOURCE_FILE": str(source.path),
        "SHARED_DIR": str(shared.root),
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": "0",
        "POLL_INTERVAL_MS": "5",
        "SINK_FLUSH_INTERVAL_MS": "50",
        "SINK_MAX_BACKOFF": "0.05",
        "SHUTDOWN_GRACE_SECONDS": "5",
    }


@pytest.fixture
def no_watcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the file watcher cannot be set (no inotify), so only the stat poll finds new lines."""

    def broken_awatch(*args: Any, **kwargs: Any) -> Any:
        raise OSError("injected: inotify unavailable")

    monkeypatch.setattr(watcher, "awatch", broken_awatch)


StartSidecar = Callable[..., Awaitable[Sidecar]]


@pytest.fixture
async def start_sidecar(env: dict[str, str]) -> AsyncIterator[StartSidecar]:
    """start_sidecar(NAME=value, ...) runs a sidecar with `env` plus those settings; left-overs are crashed."""
    running: list[Sidecar] = []

    async def start(wait: bool = True, **overrides: str) -> Sidecar:
        settings = Settings.from_env({**env, **overrides})
        sidecar = Sidecar(Service(settings, retention_interval=0.05))
        running.append(sidecar)
        if wait:
            await wait_until(lambda: sidecar.service.pipeline.started or sidecar.task.done(), what="the tail start")
        return sidecar

    yield start
    for sidecar in running:
        if not sidecar.task.done():
            await sidecar.crash()
