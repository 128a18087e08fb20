"""Wake the tailer when the source's directory changes (watchfiles, i.e. inotify on Linux), as Fluent Bit's
tail input and Filebeat do, instead of polling it every few milliseconds.

The approach is the adapter's (adapter/watcher.py): watchfiles' Rust loop sleeps `step` ms, then returns once
the set of changes stopped growing for one more step (or `debounce` ms passed), so a change is reported 1 to 2
steps after it happens; appends to one file are one (change, path) pair, so a busy file does not keep it
waiting. Its idle cost is that loop: a thread taking the GIL every `step` ms (about 1% of a core at 2 ms).

The watch is the directory's, not the file's: a rotation renames the file and creates a new one, which a watch
on the file would not see. A watch cannot be set on a directory that does not exist yet and dies with the
directory; inotify sees no change made by another host (NFS) and fails when fs.inotify.max_user_watches or
max_user_instances is exhausted. The caller keeps a slower stat poll for all of these, and this watcher keeps
trying to set its watch again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from watchfiles import Change, awatch

log = logging.getLogger("login_sidecar.watcher")

STEP_MS: Final = 2
DEBOUNCE_MS: Final = 10
RESTART_DELAY_S: Final = 1.0

# watchfiles logs every batch of changes at INFO ("1 change detected"): noise at our event rate.
logging.getLogger("watchfiles").setLevel(logging.WARNING)

WatchFilter = Callable[[Change, str], bool]


class ChangeWatcher:
    """Calls `on_change` once the watch is set and after each batch of changes in `directory` (non-recursive)
    that `watch_filter` keeps, until the `stop` given to run() is set."""

    def __init__(
        self, directory: Path, on_change: Callable[[], None], *, watch_filter: WatchFilter | None = None
    ) -> None:
        self.directory = directory
        self.watch_filter = watch_filter
        self._on_change = on_change
        self.running = False

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; set the watch again when it fails or its directory goes away."""
        failing = False
        while not stop.is_set():
            try:
                await self._watch(stop)
            except Exception as exc:
                if not failing:  # once per outage, not once per retry
                    log.warning(
                        "file watcher unavailable; the source is polled until it is back",
                        extra={"directory": str(self.directory), "error": str(exc)},
                    )
                failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RESTART_DELAY_S)
            else:
                if failing:
                    log.info("file watcher back", extra={"directory": str(self.directory)})
                failing = False
            finally:
                self.running = False

    async def _watch(self, stop: asyncio.Event) -> None:
        """One watch: returns when `stop` is set or the directory is gone; raises when it cannot be set."""
        directory = os.fspath(self.directory)
        wanted = self.watch_filter

        def keep(change: Change, path: str) -> bool:
            return path == directory or wanted is None or wanted(change, path)

        changes = awatch(
            directory, watch_filter=keep, debounce=DEBOUNCE_MS, step=STEP_MS, stop_event=stop, recursive=False
        )
        waiting: asyncio.Future[set[tuple[Change, str]]] = asyncio.ensure_future(anext(changes))
        try:
            # The generator's first step sets the inotify watch (watchfiles' RustNotify), then waits in a thread;
            # one pass of the event loop runs that step. From then on no change can be missed, and the wake-up
            # below covers whatever changed before the watch existed.
            await asyncio.sleep(0)
            if waiting.done():
                waiting.result()  # failed at once (a missing directory, no inotify): raise it
            self.running = True
            self._on_change()
            while True:
                try:
                    batch = await waiting
                except StopAsyncIteration:
                    return  # `stop` was set
                self._on_change()
                if (Change.deleted, directory) in batch:
                    return  # the watch died with its directory: set it again (run() retries until it is back)
                waiting = asyncio.ensure_future(anext(changes))
        finally:
            waiting.cancel()
            await changes.aclose()
