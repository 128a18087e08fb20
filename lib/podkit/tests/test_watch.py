"""ChangeWatcher: wakes its caller on changes, keeps trying while the directory is missing, and sets the watch
again after the directory is replaced. Wakeup: the change-or-poll wait of the services' loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from podkit.watch import ChangeWatcher, Wakeup
from podkit_testing import wait_until


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@contextlib.asynccontextmanager
async def watching(watcher: ChangeWatcher) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert not watcher.running


async def test_wakes_once_set_then_on_each_change_the_filter_keeps(tmp_path: Path) -> None:
    wakes = Wakes()
    seen: list[str] = []

    def wanted(path: str) -> bool:
        seen.append(path)
        return Path(path).name.startswith("events")

    watcher = ChangeWatcher(tmp_path, wakes, path_filter=wanted)
    async with watching(watcher):
        await wait_until(lambda: watcher.running, what="the watch")
        assert wakes.count == 1  # the wake-up that covers changes made before the watch existed
        (tmp_path / "other.txt").write_text("x")
        (tmp_path / "events.jsonl").write_text("x")
        await wait_until(lambda: wakes.count >= 2, what="a wake-up for events.jsonl")
        assert str(tmp_path / "events.jsonl") in seen
        assert str(tmp_path / "other.txt") in seen


async def test_without_a_filter_every_change_wakes(tmp_path: Path) -> None:
    wakes = Wakes()
    watcher = ChangeWatcher(tmp_path, wakes)
    async with watching(watcher):
        await wait_until(lambda: watcher.running, what="the watch")
        (tmp_path / "anything").write_text("x")
        await wait_until(lambda: wakes.count >= 2, what="a wake-up")


async def test_a_missing_directory_is_watched_once_it_exists_and_again_after_it_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="podkit.watch")
    directory = tmp_path / "events"
    wakes = Wakes()
    watcher = ChangeWatcher(directory, wakes)
    async with watching(watcher):
        await wait_until(lambda: "file watcher unavailable" in caplog.text, what="the failed watch")
        assert not watcher.running
        directory.mkdir()
        await wait_until(lambda: watcher.running, what="the watch once the directory exists")

        assert watcher.watches == 1
        shutil.rmtree(directory)  # the watch dies with the directory
        directory.mkdir()
        # Not `running`: it is still True from the dead watch until the watcher notices. `watches` counts the
        # watches set, and its wake-up on being set has happened once the count is seen.
        await wait_until(lambda: watcher.watches == 2, what="the watch set again")
        assert caplog.text.count("file watcher unavailable") == 1  # once per outage, not once per retry
        before = wakes.count  # the new watch's own wake-up is counted: only a change it sees can add one
        (directory / "segment").write_text("x")
        await wait_until(lambda: wakes.count > before, what="a wake-up in the new directory")
        assert watcher.running


async def test_a_wakeup_set_before_the_wait_returns_at_once_and_is_used_up() -> None:
    wakeup = Wakeup()
    wakeup.set()
    assert await asyncio.wait_for(wakeup.wait(3600), 5) is True
    assert await wakeup.wait(0.01) is False  # used up: this one ran to its poll interval
    wakeup.set()
    wakeup.clear()
    assert await wakeup.wait(0.01) is False


async def test_a_wakeup_set_during_the_wait_ends_it() -> None:
    wakeup = Wakeup()
    waiting = asyncio.create_task(wakeup.wait(3600))
    await asyncio.sleep(0)  # the wait has begun
    assert not waiting.done()
    wakeup.set()
    assert await asyncio.wait_for(waiting, 5) is True
    assert await wakeup.wait(0.01) is False
