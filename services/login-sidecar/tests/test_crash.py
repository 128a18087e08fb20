"""Exactly once into events/ across crashes: between the segment write and the checkpoint, a torn write,
and a real `python -m login_sidecar` SIGKILLed while events stream in."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from login_sidecar import pipeline
from podkit_testing import wait_until

if TYPE_CHECKING:
    from conftest import Shared, Source, StartSidecar


@pytest.mark.parametrize("segment_max_bytes", ["67108864", "1024"])
async def test_crash_between_segment_write_and_checkpoint(
    source: Source,
    shared: Shared,
    start_sidecar: StartSidecar,
    monkeypatch: pytest.MonkeyPatch,
    segment_max_bytes: str,
) -> None:
    sidecar = await start_sidecar(SEGMENT_MAX_BYTES=segment_max_bytes)
    ids = source.append(3)
    await wait_until(lambda: shared.holds(ids))
    checkpoint_before = shared.checkpoint("tail.json")

    def checkpoint_fails(*args: object) -> None:
        raise OSError(errno.EIO, "injected: checkpoint write failed")

    monkeypatch.setattr(pipeline, "save_tail", checkpoint_fails)
    ids += source.append(10)
    await wait_until(lambda: shared.event_ids() == ids, what="the batch written, its checkpoint not")
    await wait_until(lambda: sidecar.value("loginpod_sidecar_write_errors_total") > 0)
    await sidecar.crash()
    assert shared.checkpoint("tail.json") == checkpoint_before
    monkeypatch.undo()

    ids += source.append(2)
    again = await start_sidecar(SEGMENT_MAX_BYTES=segment_max_bytes)
    await wait_until(lambda: again.value("loginpod_sidecar_events_written_total") == 2)
    assert shared.event_ids() == ids  # no duplicate, no loss
    assert again.value("loginpod_sidecar_duplicates_skipped_total") == 10


async def test_torn_write_in_the_segment_is_cut(source: Source, shared: Shared, start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar()
    ids = source.append(3)
    await wait_until(lambda: shared.event_ids() == ids)
    await sidecar.stop()
    torn = source.event()
    with shared.segments()[-1].open("ab") as segment:  # a crash in the middle of the append of `torn`
        segment.write(source.line(torn)[:25])
    source.write(source.line(torn))
    ids.append(torn["event_id"])
    await start_sidecar()
    await wait_until(lambda: shared.event_ids() == ids)


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(source: Source, shared: Shared) -> None:
    env = {
        **os.environ,
        "SOURCE_FILE": str(source.path),
        "SHARED_DIR": str(shared.root),
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": "0",
        "POLL_INTERVAL_MS": "1",
        "SEGMENT_MAX_BYTES": "4096",
        "LOG_LEVEL": "WARNING",
    }
    written: list[str] = []
    writing = True

    async def webserver() -> None:
        while writing:
            written.extend(source.append(2))
            await asyncio.sleep(0.002)  # pacing the load, not synchronisation

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "login_sidecar"], env=env, stdout=subprocess.DEVNULL)

    writer = asyncio.create_task(webserver())
    try:
        for round_ in range(2):
            process = start()
            target = len(shared.lines()) + 100
            await wait_until(
                lambda target=target: len(shared.lines()) >= target, within=20, what=f"progress in round {round_}"
            )
            process.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(process.wait) == -signal.SIGKILL
    finally:
        writing = False
        await writer
    process = start()
    try:
        await wait_until(lambda: len(shared.lines()) >= len(written), within=20, what="every event written")
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
    ids = shared.event_ids()
    assert [event_id for event_id, count in Counter(ids).items() if count > 1] == []
    assert ids == written


def test_unreadable_tail_checkpoint_stops_the_service(source: Source, shared: Shared, tmp_path: Path) -> None:
    state = shared.root / "state" / "login-sidecar"
    state.mkdir(parents=True)
    (state / "tail.json").write_text("{not json")
    env = {**os.environ, "SOURCE_FILE": str(source.path), "SHARED_DIR": str(shared.root), "METRICS_PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "login_sidecar"], env=env, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 1
    assert b"tail checkpoint unreadable" in result.stdout
