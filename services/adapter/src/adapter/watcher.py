"""Wake the converter when something changes in SHARED_DIR/events/ (watchfiles, i.e. inotify on Linux).

watchfiles' defaults (step 50 ms, debounce 1600 ms) suit a reloader, not a pipeline with a 20 ms latency
budget. Its Rust loop sleeps `step` ms, then returns once the set of changes stopped growing for one more
step (or `debounce` ms passed), so a change is reported 1 to 2 steps after it happens. Appends to one file
are the same (change, path) pair, so a busy segment does not keep the loop waiting. With step 2 ms the
measured append-to-wake-up delay is about 3 ms (bench/latency.py); the idle cost is a thread that wakes
500 times a second to check a set, well under 1% of a core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

from watchfiles import awatch

log = logging.getLogger("adapter.watcher")

STEP_MS: Final = 2
DEBOUNCE_MS: Final = 10
RESTART_DELAY_S: Final = 1.0

# watchfiles logs every batch of changes at INFO ("1 change detected"): noise at our event rate.
logging.getLogger("watchfiles").setLevel(logging.WARNING)


class ChangeWatcher:
    """Calls `on_change` after each batch of filesystem changes in `directory`, until `stop` is set."""

    def __init__(self, directory: Path, on_change: Callable[[], None]) -> None:
        self.directory = directory
        self._on_change = on_change
        self.running = False

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; restart the watch if it fails (the converter's rescan covers the gap)."""
        while not stop.is_set():
            try:
                await self._watch(stop)
            except Exception:
                self.running = False
                log.exception("file watcher failed, restarting it", extra={"directory": str(self.directory)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RESTART_DELAY_S)
            finally:
                self.running = False

    async def _watch(self, stop: asyncio.Event) -> None:
        changes = awatch(
            self.directory, watch_filter=None, debounce=DEBOUNCE_MS, step=STEP_MS, stop_event=stop, recursive=False
        )
        waiting: asyncio.Future[object] = asyncio.ensure_future(changes.__anext__())
        try:
            # The generator's first step creates the inotify watch (watchfiles' RustNotify), then waits in a
            # thread; one pass of the event loop runs that step. From then on no change can be missed, and a
            # wake-up now converts whatever was written before the watch existed.
            await asyncio.sleep(0)
            if waiting.done():
                waiting.result()  # failed at once (a missing directory, no inotify): raise it
            self.running = True
            self._on_change()
            while True:
                try:
                    await waiting
                except StopAsyncIteration:
                    return  # `stop` was set
                self._on_change()
                waiting = asyncio.ensure_future(changes.__anext__())
        finally:
            waiting.cancel()
            await changes.aclose()
